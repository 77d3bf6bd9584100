"""Every exchange is judged and logged with how it was served: RECORD (with its latency kept), HIT, MISS, LIVE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from llmspell.providers import traffic
from llmspell.providers.base import ChatMessage, ChatRequest, ReplayMissError
from llmspell.runtime.io import get_io
from tests.providers.conftest import make_registry

ECHO = {"model": "m", "choices": [{"message": {"role": "assistant", "content": "Say hello to the whole world"},
                                   "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 6}}
REQ = ChatRequest(model="m", messages=[ChatMessage("user", "Say hello to the whole world")], max_tokens=8)


def _reg(base: str = "https://gw.test/v1") -> Any:
    return make_registry({"providers": {"gw": {"base_url": base, "api_key_env": "GW_KEY"}}}, env={"GW_KEY": "k"})


def test_record_keeps_latency_and_replay_shows_it_beside_its_own(tmp_path: Path) -> None:
    mark = traffic.exchange_mark()
    with traffic.use("record", tmp_path), respx.mock() as mock:
        mock.post(url__startswith="https://gw.test/v1").mock(return_value=httpx.Response(200, json=ECHO))
        get_io().run(_reg().chat("gw", REQ))
    [rec] = traffic.exchanges_since(mark)
    assert (rec.traffic, rec.kind, rec.recorded_latency_source) == ("RECORD", "echo", "cassette")
    entry = yaml.safe_load(traffic.cassette_path(tmp_path).read_text())["interactions"][0]["response"]
    assert entry["llmspell"]["latency_ms"] == rec.recorded_latency_ms >= 0
    mark = traffic.exchange_mark()
    # replay on another host:port, no key: matched, served from the cassette, latency from the recording
    with traffic.use("replay", tmp_path):
        get_io().run(_reg("http://127.0.0.1:19099/v1").chat("gw", REQ))
        with pytest.raises(ReplayMissError):
            get_io().run(_reg().chat("gw", ChatRequest(model="m", messages=[ChatMessage("user", "x")], max_tokens=8)))
    hit, miss = traffic.exchanges_since(mark)
    assert (hit.traffic, hit.kind, hit.recorded_latency_ms) == ("HIT", "echo", rec.recorded_latency_ms)
    assert hit.recorded_latency_source == "cassette" and hit.latency_ms < 1000
    assert (miss.traffic, miss.kind) == ("MISS", "error") and "not in the cassette" in miss.reason


def test_an_old_cassette_without_latency_says_so(tmp_path: Path) -> None:
    with traffic.use("record", tmp_path), respx.mock() as mock:
        mock.post(url__startswith="https://gw.test/v1").mock(return_value=httpx.Response(200, json=ECHO))
        get_io().run(_reg().chat("gw", REQ))
    path = traffic.cassette_path(tmp_path)
    data = yaml.safe_load(path.read_text())
    del data["interactions"][0]["response"]["llmspell"]  # as cassettes recorded before the field existed
    path.write_text(yaml.safe_dump(data))
    mark = traffic.exchange_mark()
    with traffic.use("replay", tmp_path):
        get_io().run(_reg().chat("gw", REQ))
    [hit] = traffic.exchanges_since(mark)
    assert (hit.recorded_latency_ms, hit.recorded_latency_source) == (None, "")
    # a server-reported timing header is used, and named as what it is
    data["interactions"][0]["response"]["headers"]["openai-processing-ms"] = ["812"]
    path.write_text(yaml.safe_dump(data))
    assert traffic.recorded_latency(data["interactions"][0]["response"]) == (812.0, "server header openai-processing-ms")


def test_live_exchanges_are_judged_and_streams_pass_through(tmp_path: Path) -> None:
    sse = ('data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
           'data: {"choices":[{"delta":{"content":"lo."},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    mark = traffic.exchange_mark()
    with traffic.use("live"), respx.mock() as mock:
        route = mock.post(url__startswith="https://gw.test/v1")
        route.side_effect = [httpx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"}),
                             httpx.Response(200, json=ECHO)]
        deltas: list[str] = []

        async def on_delta(text: str) -> None:
            deltas.append(text)

        resp = get_io().run(_reg().chat("gw", REQ, stream=True, on_delta=on_delta))
        get_io().run(_reg().chat("gw", REQ))
    assert resp.text == "Hello." and deltas == ["Hel", "lo."]
    streamed, echoed = traffic.exchanges_since(mark)
    assert (streamed.traffic, streamed.kind, streamed.reply_excerpt) == ("LIVE", "ok", "Hello.")
    assert (echoed.traffic, echoed.kind) == ("LIVE", "echo")


def test_live_connection_error_is_an_error_exchange() -> None:
    mark = traffic.exchange_mark()
    reg = make_registry({"providers": {"gw": {"base_url": "http://127.0.0.1:19098/v1", "max_retries": 0}}}, env={})
    with traffic.use("live"), pytest.raises(Exception):  # noqa: B017 - the provider error type is not the point
        get_io().run(reg.chat("gw", REQ))
    kinds = [(e.traffic, e.kind) for e in traffic.exchanges_since(mark)]
    assert kinds and all(k == ("LIVE", "error") for k in kinds)


def test_record_connection_error_is_an_error_exchange_and_records_nothing(tmp_path: Path) -> None:
    mark = traffic.exchange_mark()
    reg = make_registry({"providers": {"gw": {"base_url": "http://127.0.0.1:47399/v1", "max_retries": 0}}}, env={})
    with traffic.use("record", tmp_path), pytest.raises(Exception):  # noqa: B017 - the provider error type is not the point
        get_io().run(reg.chat("gw", REQ))
    kinds = [(e.traffic, e.kind) for e in traffic.exchanges_since(mark)]
    assert kinds and all(k == ("RECORD", "error") for k in kinds)
    cassette = tmp_path / "cassette.yaml"
    assert not cassette.exists() or not (yaml.safe_load(cassette.read_text()) or {}).get("interactions")


def test_judge_cassette_file_is_separate(tmp_path: Path) -> None:
    with traffic.use("record", tmp_path, file_name="judge.yaml"), respx.mock() as mock:
        mock.post(url__startswith="https://gw.test/v1").mock(return_value=httpx.Response(200, json=ECHO))
        get_io().run(_reg().chat("gw", REQ))
    assert (tmp_path / "judge.yaml").is_file() and not (tmp_path / "cassette.yaml").exists()
    assert traffic.installed().file_name == "cassette.yaml"  # `use` restored the outer state
    body = json.loads(yaml.safe_load((tmp_path / "judge.yaml").read_text())["interactions"][0]["request"]["body"])
    assert body["messages"][0]["content"] == "Say hello to the whole world"


def test_cli_output_json_reports_quality_and_exchanges(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.providers.test_traffic_replay import CASSETTES, ROUTED, SCRIPT

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    env.update(ROUTED, LLMSPELL_CASSETTE_DIR=str(CASSETTES), LLMSPELL_STATE_BACKEND="memory")
    proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "--output", "json", "run", "--traffic", "replay",
                           str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["quality"]["exchanges"] == 2 == len(payload["exchanges"])
    assert payload["quality"]["traffic"] == {"HIT": 2}
    assert sum(payload["quality"]["by_kind"].values()) == 2
    assert all(ex["recorded_latency_source"] in ("cassette", "server header openai-processing-ms", "")
               for ex in payload["exchanges"])


def test_a_fresh_process_observes_live_traffic(tmp_path: Path) -> None:
    """The default mode (live) installs its observing transport too: the first install is never a no-op."""
    import os
    import subprocess
    import sys

    from tests.harness.echo_server import start_server

    server = start_server()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
        env.update(LLMSPELL_PROVIDER_OPENAI_BASE_URL=server.base_url, LLMSPELL_STATE_BACKEND="memory")
        code = ('local a = Agent.builder():name("e"):model("openai/gpt-4o-mini"):max_tokens(8):build() '
                'print(a:execute({text = "Repeat after me: the sky is blue today"}).text)')
        proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "--output", "json", "exec", code],
                              env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["quality"] == {"exchanges": 1, "degenerate": 1, "degenerate_share": 1.0, "by_kind": {"echo": 1},
                                  "traffic": {"LIVE": 1}, "listed": 1}
