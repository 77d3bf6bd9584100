"""Issue 21: uuid_generator's version spellings, component_id's `id`, service_checker on loopback by default."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from tests.support.llm_server import LLMServer, Route
from tests.tools.conftest import invoke, invoke_error


@pytest.mark.parametrize("spelling,version", [("4", 4), ('"4"', 4), ('"v4"', 4), ('"V4"', 4), ("1", 1), ('"1"', 1),
                                              ('"v1"', 1), ('"v7"', 7), ("4.0", 4)])
def test_uuid_version_spellings(rt: Any, spelling: str, version: int) -> None:
    r = invoke(rt, "uuid_generator", f"{{version = {spelling}}}")["result"]
    assert r["version"] == version and uuid.UUID(r["uuid"]).version == version


@pytest.mark.parametrize("spelling", ["5", '"5"', '"v5"'])
def test_uuid_version_5_is_name_based(rt: Any, spelling: str) -> None:
    a = invoke(rt, "uuid_generator", f'{{version = {spelling}, name = "llmspell", namespace = "dns"}}')["result"]
    assert a["version"] == 5 and a["uuid"] == str(uuid.uuid5(uuid.NAMESPACE_DNS, "llmspell"))


@pytest.mark.parametrize("spelling", ['"v3"', '"four"', "true", '"v"', "3", '"4.5"'])
def test_uuid_bad_versions_raise_naming_the_allowed(rt: Any, spelling: str) -> None:
    msg = invoke_error(rt, "uuid_generator", f"{{version = {spelling}}}")
    assert "version" in msg and "1, 4, 5, 7" in msg


def test_component_id_has_id_and_uuid(rt: Any) -> None:
    r = invoke(rt, "uuid_generator", '{operation = "component_id", prefix = "agent", version = "v4"}')["result"]
    assert r["id"] == r["uuid"] and r["id"].startswith("agent_") and len(r["id"]) == len("agent_") + 12
    other = invoke(rt, "uuid_generator", '{operation = "component_id", prefix = "agent"}')["result"]["id"]
    assert other != r["id"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_service_checker_reaches_loopback_without_config(rt: Any, http: LLMServer) -> None:
    tcp = invoke(rt, "service_checker", f'{{target = "127.0.0.1:{http.port}", check_type = "tcp"}}')
    assert tcp["success"] is True and tcp["result"]["reachable"] is True
    http.routes["/health"] = Route(200, "ok")
    web = invoke(rt, "service_checker", f'{{target = "http://localhost:{http.port}/health", check_type = "http"}}')
    assert web["success"] is True and web["result"]["status_code"] == 200
    assert any(q.path == "/health" for q in http.requests)
    down = invoke(rt, "service_checker", f'{{target = "localhost:{_closed_port()}", check_type = "tcp"}}')
    assert down["success"] is False and down["result"]["reachable"] is False
    assert "refused (list it" not in down["error"]  # a real connection failure, not the host policy


@pytest.mark.parametrize("target", ["10.0.0.1:80", "192.168.1.1:22", "169.254.169.254:80", "172.16.0.1:443",
                                    "127.0.0.2:80", "[fd00::1]:80", "0.0.0.0:80"])
def test_service_checker_still_refuses_other_private_hosts(rt: Any, target: str) -> None:
    r = invoke(rt, "service_checker", f'{{target = "{target}", check_type = "tcp", timeout_seconds = 1}}')
    assert r["success"] is False and r["result"]["reachable"] is False
    assert "private or loopback address; refused" in r["error"]


def test_service_checker_metadata_url_over_http_refused(rt: Any) -> None:
    r = invoke(rt, "service_checker", '{target = "http://169.254.169.254/latest/meta-data", check_type = "http"}')
    assert r["success"] is False and "refused" in r["error"]


def test_service_checker_loopback_can_be_turned_off(make_rt: Any, http: LLMServer) -> None:
    rt = make_rt("[tools.service_checker]\nallow_loopback = false\n")
    r = invoke(rt, "service_checker", f'{{target = "127.0.0.1:{http.port}", check_type = "tcp"}}')
    assert r["success"] is False and "refused" in r["error"]
