"""Network tools against a real local HTTP server: webhook-caller (§19.4) and the other 🌐 tools."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.support.llm_server import LLMServer, Route
from tests.tools.conftest import invoke, invoke_error

ALLOW = '[tools.http_request]\nallowed_hosts = ["127.0.0.1"]\n'


@pytest.fixture
def net_rt(make_rt: Any) -> Any:
    return make_rt(ALLOW)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_webhook_success_posts_json(net_rt: Any, http: LLMServer) -> None:
    http.routes["/hook"] = Route(200, '{"ok": true}', "application/json")
    r = invoke(net_rt, "webhook-caller", f'{{input = "{http.url}/hook", payload = {{msg = "hi", n = 2}}, '
                                         'headers = {["X-Test"] = "1"}}')
    assert r["success"] is True and r["operation"] == "call"
    res = r["result"]
    assert res["success"] is True and res["status_code"] == 200 and res["status_text"] == "OK"
    assert res["webhook_url"] == f"{http.url}/hook" and res["retry_count"] == 0
    assert res["response"]["json"] == {"ok": True} and res["response"]["body_is_json"] is True
    assert isinstance(res["response_time_ms"], int)
    req = http.requests[-1]
    assert req.method == "POST" and req.json() == {"msg": "hi", "n": 2} and req.headers["x-test"] == "1"


def test_webhook_error_status_is_reported_not_raised(net_rt: Any, http: LLMServer) -> None:
    http.routes["/bad"] = Route(404, "missing")
    r = invoke(net_rt, "webhook-caller", f'{{url = "{http.url}/bad", max_retries = 0}}')
    assert r["success"] is False and r["result"]["status_code"] == 404
    assert r["result"]["response"]["body"] == "missing" and r["result"]["response"]["body_is_json"] is False


def test_webhook_retries_5xx(net_rt: Any, http: LLMServer) -> None:
    http.routes["/flaky"] = Route(503, "down", headers={"retry-after-ms": "10"})
    r = invoke(net_rt, "webhook-caller", f'{{input = "{http.url}/flaky", max_retries = 2}}')
    assert r["success"] is False and r["result"]["retry_count"] == 2
    assert sum(1 for q in http.requests if q.path == "/flaky") == 3


def test_webhook_network_failures_are_graceful(net_rt: Any) -> None:
    port = _closed_port()
    r = invoke(net_rt, "webhook-caller", f'{{input = "http://127.0.0.1:{port}/x", max_retries = 0}}')
    assert r["success"] is False and "connection failed" in r["error"]
    assert r["result"] == {"success": False, "webhook_url": f"http://127.0.0.1:{port}/x", "error": r["error"],
                           "retry_count": 0}
    dns = invoke(net_rt, "webhook-caller", '{input = "http://no-such-host.invalid/x"}')
    assert dns["success"] is False and "DNS lookup failed" in dns["error"]


def test_private_hosts_refused_unless_allowed(make_rt: Any, http: LLMServer) -> None:
    http.routes["/p"] = Route(200, "ok")
    rt = make_rt("")
    r = invoke(rt, "webhook-caller", f'{{input = "{http.url}/p"}}')
    assert r["success"] is False and "private or loopback" in r["error"]
    assert not http.requests
    rt2 = make_rt('[tools.webhook-caller]\nallow_private_networks = true\n')
    assert invoke(rt2, "webhook-caller", f'{{input = "{http.url}/p"}}')["success"] is True


def test_network_disabled_raises(make_rt: Any) -> None:
    rt = make_rt("[runtime.security]\nallow_network_access = false\n")
    assert "allow_network_access = false" in invoke_error(rt, "webhook-caller", '{input = "http://x.invalid"}')


def test_webhook_bad_input_raises(net_rt: Any) -> None:
    assert "missing required parameter 'input'" in invoke_error(net_rt, "webhook-caller", "{}")
    assert "invalid URL 'ftp://x'" in invoke_error(net_rt, "webhook-caller", '{input = "ftp://x"}')


def test_http_request_methods_auth_and_json(net_rt: Any, http: LLMServer) -> None:
    http.routes["/api"] = Route(201, '{"id": 7}', "application/json")
    r = invoke(net_rt, "http_request", f'{{input = "{http.url}/api", method = "PUT", body = {{a = 1}}, '
                                       'auth = {type = "bearer", token = "tok"}}')
    assert r["success"] is True and r["result"]["status_code"] == 201 and r["result"]["json"] == {"id": 7}
    req = http.requests[-1]
    assert req.method == "PUT" and req.headers["authorization"] == "Bearer tok" and req.json() == {"a": 1}
    e = invoke(net_rt, "http_request", f'{{input = "{http.url}/nope"}}')
    assert e["success"] is True and e["result"]["status_code"] == 404
    assert "invalid auth type" in invoke_error(net_rt, "http_request", f'{{input = "{http.url}/x", auth = {{type = "magic"}}}}')


def test_api_tester_graphql(net_rt: Any, http: LLMServer) -> None:
    http.routes["/h"] = Route(200, "fine")
    t = invoke(net_rt, "api-tester", f'{{input = "{http.url}/h", expect_status = 200}}')
    assert t["result"]["passed"] is True and t["result"]["status_code"] == 200
    t2 = invoke(net_rt, "api-tester", f'{{input = "{http.url}/h", expect_status = 201}}')
    assert t2["result"]["passed"] is False
    http.routes["/gql"] = Route(200, '{"data": {"hello": "world"}}', "application/json")
    g = invoke(net_rt, "graphql_query", f'{{endpoint = "{http.url}/gql", input = "{{ hello }}", variables = {{x = 1}}}}')
    assert g["success"] is True and g["result"]["data"] == {"hello": "world"}
    assert http.requests[-1].json() == {"query": "{ hello }", "variables": {"x": 1}}


HTML = """<html><head><title>T</title><meta name="description" content="D"></head>
<body><h1 class="big">Head</h1><div id="main"><p>One <a href="/a">link</a></p><p class="x">Two</p></div>
<img src="i.png" alt="pic"><script>var x = 1;</script></body></html>"""


def test_web_scraper_monitor_url_analyzer(net_rt: Any, http: LLMServer) -> None:
    http.routes["/page"] = Route(200, HTML, "text/html")
    s = invoke(net_rt, "web-scraper", f'{{input = "{http.url}/page", selectors = {{ps = "#main p", big = "h1.big"}}, '
                                      'extract_links = true, extract_images = true, extract_meta = true}')
    res = s["result"]
    assert res["title"] == "T" and "var x" not in res["text"] and "Head" in res["text"]
    assert res["selected"] == {"ps": ["One link", "Two"], "big": ["Head"]}
    assert res["links"] == [{"text": "link", "href": f"{http.url}/a"}]
    assert res["images"] == [{"src": f"{http.url}/i.png", "alt": "pic"}] and res["meta"]["description"] == "D"
    m = invoke(net_rt, "webpage-monitor", f'{{input = "{http.url}/page", selector = "p.x", previous_content = "One"}}')
    assert m["result"]["changed"] is True and m["result"]["current_content"] == "Two" and "-One" in m["result"]["diff"]
    u = invoke(net_rt, "url-analyzer", f'{{input = "{http.url}/page?q=1", fetch_metadata = true}}')
    assert u["result"]["title"] == "T" and u["result"]["description"] == "D" and u["result"]["query"] == {"q": "1"}


def test_sitemap_crawler(net_rt: Any, http: LLMServer) -> None:
    ns = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
    http.routes["/sitemap.xml"] = Route(200, f'<sitemapindex {ns}><sitemap><loc>{http.url}/s1.xml</loc></sitemap></sitemapindex>',
                                        "application/xml")
    http.routes["/s1.xml"] = Route(200, f"<urlset {ns}><url><loc>{http.url}/a</loc></url><url><loc>{http.url}/b</loc>"
                                        "</url></urlset>", "application/xml")
    r = invoke(net_rt, "sitemap-crawler", f'{{input = "{http.url}/sitemap.xml", max_urls = 5}}')
    assert r["result"] == {"urls": [f"{http.url}/a", f"{http.url}/b"], "count": 2}


def test_service_checker(net_rt: Any, make_rt: Any, http: LLMServer) -> None:
    rt = make_rt('[tools.service_checker]\nallow_private_networks = true\n')
    ok = invoke(rt, "service_checker", f'{{target = "127.0.0.1:{http.port}", check_type = "tcp"}}')
    assert ok["result"]["reachable"] is True and isinstance(ok["result"]["latency_ms"], int)
    down = invoke(rt, "service_checker", f'{{target = "127.0.0.1:{_closed_port()}", check_type = "tcp"}}')
    assert down["success"] is False and down["result"]["reachable"] is False
    dns = invoke(rt, "service_checker", '{target = "localhost", check_type = "dns"}')
    assert dns["result"]["reachable"] is True and dns["result"]["addresses"]


DDG = """<div class="result"><a rel="nofollow" class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Flua.org%2F&amp;rut=x">The <b>Lua</b> language</a>
<a class="result__snippet" href="x">Lua is a <b>powerful</b> language.</a></div>
<div class="result"><a class="result__a" href="https://example.com/two">Second</a><a class="result__snippet">Two.</a></div>"""


def test_web_search_duckduckgo_html(make_rt: Any, http: LLMServer) -> None:
    http.routes["/html/"] = Route(200, DDG, "text/html")
    rt = make_rt(f'[tools.web_search]\nallow_private_networks = true\nduckduckgo_url = "{http.url}/html/"\n')
    r = invoke(rt, "web_search", '{input = "lua language", max_results = 5}')
    assert r["success"] is True and r["result"]["count"] == 2 and r["result"]["provider"] == "duckduckgo"
    first = r["result"]["results"][0]
    assert first == {"title": "The Lua language", "url": "https://lua.org/", "snippet": "Lua is a powerful language."}
    assert http.requests[-1].path.startswith("/html/?q=lua+language")
    assert "brave_api_key" in invoke_error(rt, "web_search", '{input = "x", provider = "brave"}')


def test_traffic_modes_apply_to_network_tools(net_rt: Any, http: LLMServer, tmp_path: Any) -> None:
    from llmspell.providers import traffic

    http.routes["/rec"] = Route(200, '{"recorded": true}', "application/json")
    cassettes = tmp_path / "cassettes"
    url = f"{http.url}/rec"
    with traffic.use("record", cassettes):
        live = invoke(net_rt, "webhook-caller", f'{{input = "{url}", payload = {{n = 1}}}}')
    assert live["success"] is True and len(http.requests) == 1
    http.stop()
    with traffic.use("replay", cassettes):
        again = invoke(net_rt, "webhook-caller", f'{{input = "{url}", payload = {{n = 1}}}}')
        miss = invoke(net_rt, "webhook-caller", '{input = "https://hooks.example.invalid/none", payload = {n = 2}}')
    assert again["success"] is True and again["result"]["response"]["json"] == {"recorded": True}
    assert miss["success"] is False and "DNS" not in miss["error"]
