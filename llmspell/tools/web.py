"""Web tools: web_search, url-analyzer, web-scraper, webpage-monitor, sitemap-crawler (§19.5)."""

from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urljoin, urlsplit

from llmspell.tools import html as dom
from llmspell.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParamError, fail, ok
from llmspell.tools.http import NetworkFailure, check_url, ensure_network_allowed, number, request


class _Web(Tool):
    is_async = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raise ToolError(f"{self.spec.name}: must run on the IO loop")


def _meta(root: dom.Node) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in dom.select(root, "meta"):
        key = m.attrs.get("name") or m.attrs.get("property")
        if key and "content" in m.attrs:
            out[key] = m.attrs["content"]
    return out


def _title(root: dom.Node) -> str | None:
    t = dom.select(root, "title")
    return t[0].text() if t else None


class UrlAnalyzer(_Web):
    """url-analyzer: parse a URL; with fetch_metadata, fetch title/description/content type."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        url = params.get("input")
        if not isinstance(url, str) or not url:
            raise ToolParamError(f"{name}: missing required parameter 'input' (the URL)")
        p = urlsplit(url)
        if not p.scheme or not p.netloc:
            return fail("analyze", f"'{url}' is not an absolute URL", {"valid": False})
        q = parse_qs(p.query, keep_blank_values=True)
        query = {k: (v[0] if len(v) == 1 else v) for k, v in q.items()}
        result: dict[str, Any] = {"valid": True, "scheme": p.scheme, "host": p.hostname, "port": p.port,
                                  "path": unquote(p.path) if params.get("decode_params") else p.path,
                                  "query": query, "fragment": p.fragment}
        if params.get("fetch_metadata"):
            ensure_network_allowed(name, ctx)
            check_url(name, url)
            try:
                r = await request(ctx, "GET", url, timeout=15.0, max_retries=1)
            except NetworkFailure as e:
                return fail("analyze", e.message, result)
            result["status_code"] = r.status_code
            result["content_type"] = r.headers.get("content-type")
            if "html" in (result["content_type"] or ""):
                root = dom.parse(r.body)
                result["title"] = _title(root)
                result["description"] = _meta(root).get("description")
        return ok("analyze", result)


class WebScraper(_Web):
    """web-scraper: title, text, CSS selections, links, images and meta of a page."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        url = check_url(name, params.get("input"))
        try:
            r = await request(ctx, "GET", url, timeout=number(params, "timeout", 30.0), max_retries=1)
        except NetworkFailure as e:
            return fail("scrape", e.message, {"url": url})
        root = dom.parse(r.body)
        body = dom.select(root, "body")
        result: dict[str, Any] = {"url": url, "status_code": r.status_code, "title": _title(root),
                                  "text": (body[0] if body else root).text()}
        selectors = params.get("selectors")
        if params.get("selector"):
            selectors = {"selector": params["selector"], **(selectors or {})}
        if isinstance(selectors, dict):
            try:
                result["selected"] = {k: [n.text() for n in dom.select(root, str(s))] for k, s in selectors.items()}
            except ValueError as e:
                raise ToolParamError(f"{name}: {e}") from None
        if params.get("extract_links"):
            result["links"] = [{"text": a.text(), "href": urljoin(url, a.attrs["href"])}
                               for a in dom.select(root, "a[href]")]
        if params.get("extract_images"):
            result["images"] = [{"src": urljoin(url, i.attrs.get("src", "")), "alt": i.attrs.get("alt", "")}
                                for i in dom.select(root, "img")]
        if params.get("extract_meta"):
            result["meta"] = _meta(root)
        return ok("scrape", result)


class WebpageMonitor(_Web):
    """webpage-monitor: fetch, optionally narrow by selector, and diff against previous content."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        url = check_url(name, params.get("input"))
        try:
            r = await request(ctx, "GET", url, timeout=30.0, max_retries=1)
        except NetworkFailure as e:
            return fail("monitor", e.message, {"url": url})
        root = dom.parse(r.body)
        if params.get("selector"):
            current = "\n".join(n.text() for n in dom.select(root, str(params["selector"])))
        else:
            body = dom.select(root, "body")
            current = (body[0] if body else root).text()
        prev = params.get("previous_content")
        a, b = str(prev or ""), current
        if params.get("ignore_whitespace"):
            a, b = " ".join(a.split()), " ".join(b.split())
        changed = prev is not None and a != b
        diff = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), "previous", "current")) \
            if changed else ""
        return ok("monitor", {"url": url, "changed": changed, "current_content": current, "diff": diff,
                              "status_code": r.status_code})


class SitemapCrawler(_Web):
    """sitemap-crawler: URLs of a sitemap (and nested sitemap indexes when follow_sitemaps)."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        start = check_url(name, params.get("input"))
        limit = int(params.get("max_urls") or 100)
        follow = params.get("follow_sitemaps", True) is not False
        timeout = number(params, "timeout", 30.0)
        urls: list[str] = []
        queue, seen = [start], set()
        try:
            while queue and len(urls) < limit:
                sm = queue.pop(0)
                if sm in seen:
                    continue
                seen.add(sm)
                r = await request(ctx, "GET", sm, timeout=timeout, max_retries=1)
                try:
                    tree = ET.fromstring(r.body.encode())
                except ET.ParseError as e:
                    return fail("crawl", f"{sm} is not a sitemap XML: {e}", {"urls": urls, "count": len(urls)})
                tag = tree.tag.rsplit("}", 1)[-1]
                locs = [el.text.strip() for el in tree.iter() if el.tag.rsplit("}", 1)[-1] == "loc" and el.text]
                if tag == "sitemapindex":
                    if follow:
                        queue.extend(locs)
                else:
                    urls.extend(locs[: limit - len(urls)])
        except NetworkFailure as e:
            return fail("crawl", e.message, {"urls": urls, "count": len(urls)})
        return ok("crawl", {"urls": urls, "count": len(urls)})


_DDG_RESULT = re.compile(r'<a[^>]+class="result__a"[^>]+href="(?P<href>[^"]+)"[^>]*>(?P<title>.*?)</a>', re.S)
_DDG_SNIPPET = re.compile(r'class="result__snippet"[^>]*>(?P<s>.*?)</a>', re.S)
_TAGS = re.compile(r"<[^>]+>")


class WebSearch(_Web):
    """web_search: DuckDuckGo HTML (no key) or keyed providers configured in [tools.web_search]."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        query = params.get("input")
        if not isinstance(query, str) or not query.strip():
            raise ToolParamError(f"{name}: missing required parameter 'input' (the query)")
        provider = str(params.get("provider") or ctx.opt("default_provider", "duckduckgo")).lower()
        n = int(params.get("max_results") or 10)
        try:
            if provider == "duckduckgo":
                results = await self._ddg(ctx, query, n)
            else:
                results = await self._keyed(ctx, provider, query, n)
        except NetworkFailure as e:
            return fail("search", e.message, {"provider": provider, "query": query, "results": [], "count": 0})
        return ok("search", {"results": results, "provider": provider, "query": query, "count": len(results)})

    async def _ddg(self, ctx: ToolContext, query: str, n: int) -> list[dict[str, str]]:
        base = str(ctx.opt("duckduckgo_url", "https://html.duckduckgo.com/html/"))
        r = await request(ctx, "GET", f"{base}?q={quote_plus(query)}", timeout=20.0, max_retries=1,
                          headers={"user-agent": "Mozilla/5.0 (llmspell web_search)"})
        snippets = [_TAGS.sub("", m.group("s")).strip() for m in _DDG_SNIPPET.finditer(r.body)]
        out = []
        for i, m in enumerate(_DDG_RESULT.finditer(r.body)):
            href = m.group("href")
            q = parse_qs(urlsplit(href).query).get("uddg")
            out.append({"title": _TAGS.sub("", m.group("title")).strip(), "url": q[0] if q else href,
                        "snippet": snippets[i] if i < len(snippets) else ""})
            if len(out) >= n:
                break
        return out

    async def _keyed(self, ctx: ToolContext, provider: str, query: str, n: int) -> list[dict[str, str]]:
        key = ctx.opt(f"{provider}_api_key") or ctx.opt("api_key")
        if not key:
            raise ToolError(f"web_search: provider '{provider}' needs {provider}_api_key in [tools.web_search]")
        if provider == "brave":
            r = await request(ctx, "GET", f"https://api.search.brave.com/res/v1/web/search?q={quote_plus(query)}"
                              f"&count={n}", headers={"x-subscription-token": str(key)}, timeout=20.0)
            items = ((r.json or {}).get("web") or {}).get("results") or []
            return [{"title": i.get("title", ""), "url": i.get("url", ""), "snippet": i.get("description", "")}
                    for i in items[:n]]
        if provider == "serperdev":
            r = await request(ctx, "POST", "https://google.serper.dev/search", json_body={"q": query, "num": n},
                              headers={"x-api-key": str(key)}, timeout=20.0)
            items = (r.json or {}).get("organic") or []
            return [{"title": i.get("title", ""), "url": i.get("link", ""), "snippet": i.get("snippet", "")}
                    for i in items[:n]]
        if provider == "serpapi":
            r = await request(ctx, "GET", f"https://serpapi.com/search.json?q={quote_plus(query)}&api_key={key}",
                              timeout=20.0)
            items = (r.json or {}).get("organic_results") or []
            return [{"title": i.get("title", ""), "url": i.get("link", ""), "snippet": i.get("snippet", "")}
                    for i in items[:n]]
        cx = ctx.opt("google_search_engine_id") or ctx.opt("search_engine_id")
        if not cx:
            raise ToolError("web_search: provider 'google' needs google_search_engine_id in [tools.web_search]")
        r = await request(ctx, "GET", f"https://www.googleapis.com/customsearch/v1?q={quote_plus(query)}&key={key}"
                          f"&cx={cx}&num={min(n, 10)}", timeout=20.0)
        items = (r.json or {}).get("items") or []
        return [{"title": i.get("title", ""), "url": i.get("link", ""), "snippet": i.get("snippet", "")}
                for i in items[:n]]
