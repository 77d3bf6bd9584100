"""Document tools: citation-formatter (BibTeX/YAML → APA, MLA, Chicago, Harvard, IEEE) and pdf-processor."""

from __future__ import annotations

import io
import re
from typing import Any

from llmspell.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParamError, choice, need, ok
from llmspell.tools.sandbox import SandboxError

STYLES = ("apa", "mla", "chicago", "harvard", "ieee")
_BIB_ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", re.S)


def _bib_value(text: str, i: int) -> tuple[str, int]:
    """Read a BibTeX field value starting at text[i] ({...}, "..." or a bare word)."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1:j].replace("{", "").replace("}", ""), j + 1
            j += 1
        raise ToolParamError("citation-formatter: unbalanced braces in BibTeX")
    if i < len(text) and text[i] == '"':
        j = text.index('"', i + 1)
        return text[i + 1:j], j + 1
    m = re.compile(r"[^,}\s]+").match(text, i)
    return (m.group(0), m.end()) if m else ("", i)


def parse_bibtex(text: str) -> list[dict[str, Any]]:
    entries = []
    for m in _BIB_ENTRY.finditer(text):
        entry: dict[str, Any] = {"type": m.group(1).lower(), "id": m.group(2)}
        i = m.end()
        while True:
            fm = re.compile(r"\s*(\w+)\s*=\s*").match(text, i)
            if not fm:
                break
            value, i = _bib_value(text, fm.end())
            entry[fm.group(1).lower()] = " ".join(value.split())
            cm = re.compile(r"\s*,").match(text, i)
            if not cm:
                break
            i = cm.end()
        if isinstance(entry.get("author"), str):
            entry["author"] = [a.strip() for a in entry["author"].split(" and ") if a.strip()]
        entries.append(entry)
    return entries


def parse_entries(raw: Any) -> list[dict[str, Any]]:
    """BibTeX text, YAML text (a list or {references: [...]}) or a Lua array of tables."""
    if isinstance(raw, list):
        return [dict(e) for e in raw if isinstance(e, dict)]
    if not isinstance(raw, str) or not raw.strip():
        raise ToolParamError("citation-formatter: missing 'input' (BibTeX or YAML bibliography)")
    if raw.lstrip().startswith("@"):
        return parse_bibtex(raw)
    import yaml

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ToolParamError(f"citation-formatter: input is neither BibTeX nor valid YAML: {e}") from None
    if isinstance(data, dict):
        data = data.get("references") or data.get("entries") or list(data.values())
    if not isinstance(data, list):
        raise ToolParamError("citation-formatter: YAML input must be a list of references")
    out = []
    for item in data:
        if isinstance(item, dict):
            entry = dict(item)
            if "key" in entry and "id" not in entry:
                entry["id"] = entry["key"]
            if isinstance(entry.get("authors"), list) and "author" not in entry:
                entry["author"] = entry["authors"]
            if isinstance(entry.get("author"), str):
                entry["author"] = [a.strip() for a in re.split(r"\s+and\s+|;", entry["author"]) if a.strip()]
            out.append(entry)
    return out


def _split_name(name: str) -> tuple[str, str]:
    if "," in name:
        last, first = name.split(",", 1)
        return last.strip(), first.strip()
    parts = name.split()
    return (parts[-1], " ".join(parts[:-1])) if parts else ("", "")


def _initials(first: str) -> str:
    return " ".join(p[0] + "." for p in re.split(r"[\s-]+", first) if p)


def _authors(e: dict[str, Any], style: str) -> str:
    names = [_split_name(str(a)) for a in (e.get("author") or [])]
    if not names:
        return ""
    if style in ("apa", "harvard"):
        parts = [f"{last}, {_initials(first)}".strip(", ") for last, first in names]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", & " + parts[-1]
    if style == "ieee":
        parts = [f"{_initials(first)} {last}".strip() for last, first in names]
        if len(parts) <= 2:
            return " and ".join(parts)
        return ", ".join(parts[:-1]) + ", and " + parts[-1]
    first_last, first_first = names[0]
    head = f"{first_last}, {first_first}".strip(", ")
    if len(names) == 1:
        return head
    if style == "mla":
        return f"{head}, et al." if len(names) > 2 else f"{head}, and {names[1][1]} {names[1][0]}".strip()
    rest = [f"{f} {last}".strip() for last, f in names[1:]]
    if len(rest) == 1:
        return f"{head} and {rest[0]}"
    return head + ", " + ", ".join(rest[:-1]) + ", and " + rest[-1]


def format_entry(e: dict[str, Any], style: str, n: int) -> str:
    a = _authors(e, style)
    year = str(e.get("year") or "n.d.")
    title = str(e.get("title") or "Untitled")
    venue = str(e.get("journal") or e.get("booktitle") or e.get("publisher") or "")
    vol, pages = e.get("volume"), e.get("pages")
    extra = ""
    if vol:
        extra += f", {vol}"
        if e.get("number"):
            extra += f"({e['number']})"
    if pages:
        extra += f", {str(pages).replace('--', '–')}"
    if style == "apa":
        s = f"{a} ({year}). {title}."
        return s + (f" {venue}{extra}." if venue else "")
    if style == "harvard":
        return f"{a} ({year}) {title}." + (f" {venue}{extra}." if venue else "")
    if style == "mla":
        return f"{a}. \"{title}.\"" + (f" {venue}{extra}," if venue else "") + f" {year}."
    if style == "chicago":
        return f"{a}. {year}. \"{title}.\"" + (f" {venue}{extra}." if venue else "")
    return f"[{n}] {a}, \"{title},\"" + (f" {venue}{extra}," if venue else "") + f" {year}."


class CitationFormatter(Tool):
    """citation-formatter: format citations, validate a bibliography, list the styles."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "citation-formatter"
        op = choice(params, "operation", name, ("format_citation", "validate_bibliography", "list_styles"),
                    "format_citation")
        if op == "list_styles":
            return ok(op, {"styles": list(STYLES)})
        entries = parse_entries(params.get("input"))
        if op == "validate_bibliography":
            errors = []
            for i, e in enumerate(entries, 1):
                for f in ("title", "author", "year"):
                    if not e.get(f):
                        errors.append({"entry": e.get("id") or i, "field": f, "message": f"missing {f}"})
            return ok(op, {"valid": not errors, "errors": errors, "count": len(entries)})
        style = choice(params, "style", name, STYLES, "apa")
        keys = params.get("cite_keys")
        if isinstance(keys, list) and keys:
            wanted = {str(k) for k in keys}
            missing = wanted - {str(e.get("id")) for e in entries}
            if missing:
                raise ToolError(f"{name}: unknown cite keys: {', '.join(sorted(missing))}")
            entries = [e for e in entries if str(e.get("id")) in wanted]
        citations = [{"id": e.get("id"), "text": format_entry(e, style, i)} for i, e in enumerate(entries, 1)]
        return ok(op, {"citations": citations, "style": style, "count": len(citations)})


class PdfProcessor(Tool):
    """pdf-processor: text, metadata and per-page text of a sandboxed PDF (pypdf)."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "pdf-processor"
        op = choice(params, "operation", name, ("extract_text", "extract_metadata", "extract_pages"), "extract_text")
        try:
            path = ctx.sandbox.resolve(need(params, "input", name))
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(ctx.sandbox.read_bytes(path)))
            n = len(reader.pages)
            if op == "extract_metadata":
                md: dict[str, Any] = dict(reader.metadata or {})
                return ok(op, {"title": md.get("/Title"), "author": md.get("/Author"), "subject": md.get("/Subject"),
                               "creator": md.get("/Creator"), "producer": md.get("/Producer"), "pages": n,
                               "encrypted": bool(reader.is_encrypted)})
            start = int(params.get("start_page") or 1)
            end = int(params.get("end_page") or n)
            if start < 1 or end > n or start > end:
                raise ToolParamError(f"{name}: page range {start}-{end} is outside 1-{n}")
            pages: list[dict[str, Any]] = [{"page": i, "text": reader.pages[i - 1].extract_text() or ""} for i in range(start, end + 1)]
        except SandboxError as e:
            raise ToolError(f"{name}: {e}") from None
        except (OSError, PdfReadError, ValueError) as e:
            if isinstance(e, ToolParamError):
                raise
            raise ToolError(f"{name}: cannot read {path}: {e}") from None
        if op == "extract_pages":
            return ok(op, {"pages": pages, "count": len(pages)})
        return ok(op, {"text": "\n\n".join(str(p["text"]) for p in pages), "pages": n})
