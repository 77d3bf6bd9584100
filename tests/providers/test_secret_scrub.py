"""Issue 17.5: secrets scrubbed by value and by shape from cassettes, logs, State, timelines, artifacts;
cassettes read with the safe YAML loader only.

The attacks: a provider configured with a custom auth header (a value that looks like nothing in
particular) and an environment key is recorded against a real loopback server that echoes the
header and a key-shaped string back; a crafted cassette carries a python/object tag that would run
a command. Each test then shows the system still serving.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmspell.providers import traffic
from llmspell.providers.base import ChatMessage, ChatRequest
from llmspell.providers.scrub import CassetteFormatError, parse_cassette
from llmspell.runtime import redact
from llmspell.runtime.io import get_io
from tests.providers.conftest import make_registry
from tests.support.llm_server import LLMServer

HEADER_SECRET = "hdr-7Q2v9LmPz4"  # matches no key pattern: only the by-value rule can catch it
ENV_KEY = "plainkey-Zx81Kq0Wm3Yt"  # the provider's key, also shape-less
SHAPED = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123"  # a key-shaped string the server puts in its reply


def _req(text: str = "hi") -> ChatRequest:
    return ChatRequest(model="m", messages=[ChatMessage("user", text)], max_tokens=8)


@pytest.fixture
def server() -> Any:
    with LLMServer(reply_fn=lambda body: f"echo {SHAPED} and {HEADER_SECRET}") as s:
        yield s


def _registry(base_url: str) -> Any:
    return make_registry({"providers": {"gw": {"base_url": base_url, "api_key_env": "GW_KEY", "api_key_required": True,
                                               "headers": {"X-Custom-Auth": HEADER_SECRET, "X-Tag": "short"}}}},
                         env={"GW_KEY": ENV_KEY})


def test_recorded_cassette_holds_no_configured_or_key_shaped_secret(tmp_path: Path, server: LLMServer) -> None:
    reg = _registry(server.base_url)
    with traffic.use("record", tmp_path):
        resp = get_io().run(reg.chat("gw", _req()), timeout=30)
    assert HEADER_SECRET in resp.text  # the script still sees the live reply
    sent = server.requests[-1].headers
    assert sent["x-custom-auth"] == HEADER_SECRET and sent["authorization"] == f"Bearer {ENV_KEY}"
    text = traffic.cassette_path(tmp_path).read_text()
    for secret in (HEADER_SECRET, ENV_KEY, SHAPED):
        assert secret not in text
    data = yaml.safe_load(text)
    req_headers = data["interactions"][0]["request"]["headers"]
    assert req_headers["x-custom-auth"] == ["[REDACTED]"] and req_headers["x-tag"] == ["[REDACTED]"]
    assert "[REDACTED]" in data["interactions"][0]["response"]["body"]["string"]
    # still serving: the scrubbed cassette replays
    with traffic.use("replay", tmp_path):
        out = get_io().run(_registry("http://127.0.0.1:9/v1").chat("gw", _req()), timeout=30)
    assert out.text.startswith("echo [REDACTED] and [REDACTED]")


def test_crafted_cassette_with_python_tag_is_refused(tmp_path: Path, server: LLMServer) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "cassette.yaml").write_text(
        "interactions:\n"
        f"- request: !!python/object/apply:os.system ['touch {marker}']\n"
        "  response: {status: {code: 200, message: OK}, headers: {}, body: {string: ''}}\n"
        "version: 1\n")
    with pytest.raises(CassetteFormatError) as ei:
        parse_cassette(evil / "cassette.yaml")
    assert "refused" in str(ei.value) and "python/object" in str(ei.value)
    # through the replay transport too: a ProviderError naming the file, nothing executed
    with traffic.use("replay", evil), pytest.raises(CassetteFormatError):
        get_io().run(_registry("http://127.0.0.1:9/v1").chat("gw", _req()), timeout=30)
    assert not marker.exists()
    # still serving: a real recording in another directory replays
    good = tmp_path / "good"
    with traffic.use("record", good):
        get_io().run(_registry(server.base_url).chat("gw", _req()), timeout=30)
    with traffic.use("replay", good):
        assert get_io().run(_registry("http://127.0.0.1:9/v1").chat("gw", _req()), timeout=30).text


@pytest.mark.parametrize("text", ["not: [valid", "- just\n- a list\n", "interactions:\n- {request: 1}\n"])
def test_malformed_cassettes_are_refused_clearly(tmp_path: Path, text: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(CassetteFormatError) as ei:
        parse_cassette(tmp_path / "c.yaml")
    assert str(tmp_path / "c.yaml") in str(ei.value)


def test_shape_rules_and_value_rules() -> None:
    redact.register_secret("tiny")  # too short to be treated as a secret: ordinary text survives
    assert redact.scrub("a tiny note") == "a tiny note"
    for shaped in ("sk-ant-api03-" + "a" * 30, "AKIAABCDEFGHIJKLMNOP", "ghp_" + "x" * 30, "xoxb-1234567890-abc",
                   "AIza" + "B" * 35, "gsk_" + "c" * 24, "github_pat_" + "d" * 30, "Bearer abc.def"):
        assert redact.scrub(f"k={shaped};") == "k=[REDACTED];", shaped
    # a configured header value that is a plain word (a team name) is no secret: text keeps it
    assert not redact.looks_like_secret("llmspell") and redact.looks_like_secret("hdr-7Q2v9LmPz4")
    reg = make_registry({"providers": {"gw": {"base_url": "http://127.0.0.1:9/v1",
                                              "headers": {"X-Team": "llmspellteam", "X-Api-Key": "plainwordkey"}}}},
                        env={})
    assert reg.spec("gw") is not None
    assert redact.scrub("team llmspellteam") == "team llmspellteam"
    assert redact.scrub("key plainwordkey") == "key [REDACTED]"  # a key-named header is a secret whatever it is
    redact.register_secret("opaque-value-998877")
    assert redact.scrub("x opaque-value-998877 y") == "x [REDACTED] y"
    assert redact.redact_json(b'{"a": "opaque-value-998877"}')[0] == b'{"a": "[REDACTED]"}'


# ----------------------------------------------------------------------------- state, sessions, artifacts, logs
@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "GW_KEY"\n'
                   f'[providers.gw.headers]\nX-Custom-Auth = "{HEADER_SECRET}"\n'
                   f'[state]\npath = "{tmp_path / "s.sqlite3"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    env["GW_KEY"] = ENV_KEY
    err = BufferSink()
    r = create_runtime(load_config(cfg, env=env), stdout=BufferSink(), stderr=err)
    r.test_err = err
    yield r
    r.close()


def test_state_timeline_artifacts_and_logs_never_hold_a_configured_secret(rt: Any, tmp_path: Path) -> None:
    stream = io.StringIO()
    from llmspell.runtime import tracing

    tracing.configure("info", stream=stream)
    try:
        code = f"""
        local key, hdr = "{ENV_KEY}", "{HEADER_SECRET}"
        State.save("custom", "k", {{v = "key " .. key, h = hdr}})
        local sid = Session.create({{name = "s"}})
        Session.set_current(sid)
        Event.publish("app.secret", {{token = key, note = "hdr " .. hdr}})
        local id = Artifact.store(sid, "note", "n.txt", "body", {{auth = hdr, k = key}})
        Logger.info("the key is " .. key, {{h = hdr}})
        Debug.info("debug key " .. key)
        Session.save(sid)
        return sid, id
        """
        res = rt.run_string(code, "=t")
        logging.getLogger("llmspell.test").warning("header %s key %s", HEADER_SECRET, ENV_KEY)
    finally:
        tracing.configure("warn")
    sid = res.values[0]
    services = rt.services
    stored = rt.run_string('return State.load("custom", "k")', "=t").values[0]
    assert stored == {"v": "key [REDACTED]", "h": "[REDACTED]"}
    timeline = repr(services.sessions.timeline(sid))
    assert "app.secret" in timeline and ENV_KEY not in timeline and HEADER_SECRET not in timeline
    meta = repr(rt.run_string(f'return Artifact.list("{sid}")', "=t").values[0])
    assert "[REDACTED]" in meta and ENV_KEY not in meta and HEADER_SECRET not in meta
    captured = list(services.debug.captured)
    assert any(e["message"] == "debug key [REDACTED]" for e in captured), captured
    assert "the key is [REDACTED]" in rt.test_err.text
    logs = stream.getvalue() + repr(captured) + rt.test_err.text
    assert ENV_KEY not in logs and HEADER_SECRET not in logs and "header [REDACTED] key [REDACTED]" in logs
    # the database file itself never holds them either
    raw = (tmp_path / "s.sqlite3").read_bytes()
    assert ENV_KEY.encode() not in raw and HEADER_SECRET.encode() not in raw
    # still serving
    assert rt.run_string('State.save("custom", "ok", 1); return State.load("custom", "ok")', "=t").values[0] == 1
