"""Live runs against a loopback model that only echoes its prompt fail, with the reason; a user's own app
folder records, replays and runs through the same harness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness import APPS_DIR, REPO_ROOT
from tests.harness.echo_server import EchoServer, start_server

pytestmark = pytest.mark.slow

MY_APP_TOML = """
[app]
name = "my-app"
layer = 1
agents = 1

[expect]
files = ["answer.txt"]
output = ["answer written"]

[budget]
runtime_seconds = 60
cost_usd = 0.01

[judge]
model = "openai/gpt-4o-mini"

[[checks]]
name = "the model named a colour"
type = "regex"
on = "file:answer.txt"
pattern = '(?i)\\A\\s*(teal|blue|red|green)\\.?\\s*\\Z'

[[checks]]
name = "no prompt scaffold in the answer"
type = "not_contains"
on = "file:answer.txt"
value = "Colour:"

[[checks]]
name = "the model answered"
type = "metric"
metric = "answered_by_model"
min = 1

[[checks]]
name = "the judge accepts the answer"
type = "judge"
on = "file:answer.txt"
rubric = "the text is one colour word"
min_score = 3
"""

MY_APP_LUA = """
local out = (ARGS["output-dir"] or "out"):gsub("/+$", "")
local a = Agent.builder():name("painter"):model("openai/gpt-4o-mini"):max_tokens(8):build()
local text = a:execute({text = "Sky: blue\\nGrass: green\\nColour:"}).text:gsub("^%s+", "")
local f = assert(io.open(out .. "/answer.txt", "w"))
f:write(text, "\\n")
f:close()
if text:match("^[%a]+%.?$") then Metrics.count("answered_by_model") else Metrics.count("fallbacks") end
print("answer written")
"""


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def teal() -> Iterator[EchoServer]:
    server = start_server(answer="Teal.", grade=" 4 - one colour word")
    yield server
    server.stop()


def _harness(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _my_app(tmp_path: Path) -> Path:
    d = tmp_path / "my-app"
    d.mkdir()
    (d / "app.toml").write_text(MY_APP_TOML)
    (d / "main.lua").write_text(MY_APP_LUA)
    (d / "config.toml").write_text('[providers]\ndefault_provider = "openai"\n')
    return d


def test_live_against_an_echo_model_fails_every_app_with_the_reason(tmp_path: Path, echo: EchoServer) -> None:
    apps = sorted(p.parent.name for p in APPS_DIR.glob("*/app.toml"))
    proc = _harness("live", *apps, "--base-url", echo.base_url, "--repeat", "1", "--report-dir", str(tmp_path),
                    "--no-gates", "-p", "no:xdist")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert echo.requests, "the apps were routed to the echo server"
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["traffic"] == "live" and data["base_url"] == echo.base_url
    assert sorted(a["app"] for a in data["apps"]) == apps
    for app in data["apps"]:
        run = app["runs"][0]
        assert app["passed"] == 0, app["app"]
        assert app["quality"]["degenerate_share"] > 0.2 and app["quality"]["by_kind"].get("echo", 0) > 0, app["app"]
        assert set(app["quality"]["traffic"]) == {"LIVE"}, app["quality"]
        assert any("model replies are degenerate" in f and "over the 20 % limit" in f for f in run["failures"]), \
            (app["app"], run["failures"])
    out = proc.stdout
    assert "degenerate replies" in out and "FAIL" in out


def test_a_users_app_folder_records_replays_and_runs(tmp_path: Path, echo: EchoServer, teal: EchoServer) -> None:
    app = _my_app(tmp_path)
    # live against a model that answers: every check passes
    good = _harness("live", str(app), "--base-url", teal.base_url, "--repeat", "2", "--report-dir",
                    str(tmp_path / "good"), "--no-gates", "-p", "no:xdist")
    assert good.returncode == 0, good.stdout[-3000:]
    data = json.loads((tmp_path / "good" / "results.json").read_text())
    row = data["apps"][0]
    assert (row["app"], row["passed"], row["total"]) == ("my-app", 2, 2)
    assert [c["passed"] for c in row["checks"]] == [True, True, True, True]
    assert row["checks"][3]["reasons"][0] == "r1: PASS score 4 >= 3: one colour word (judge LIVE)"
    assert row["rate"]["wilson95"] == [0.3424, 1.0]
    assert row["quality"]["exchanges"] == 2 and row["quality"]["degenerate"] == 0
    # record against the echo model into the app's own folder, then replay offline
    rec = _harness("record", str(app), "--base-url", echo.base_url, "--report-dir", str(tmp_path / "rec"),
                   "-p", "no:xdist")
    cassette = app / "cassettes" / "cassette.yaml"
    assert cassette.is_file(), rec.stdout[-3000:]
    entry = yaml.safe_load(cassette.read_text())["interactions"][0]
    assert entry["response"]["llmspell"]["latency_ms"] >= 0
    echo.stop()  # replay must not need the server
    rep = _harness("run", str(app), "--report-dir", str(tmp_path / "rep"), "-p", "no:xdist")
    assert rep.returncode == 1, rep.stdout[-3000:]
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    row = data["apps"][0]
    run = row["runs"][0]
    assert row["quality"]["traffic"] == {"HIT": 1} and row["quality"]["by_kind"] == {"echo": 1}
    assert run["timing"]["basis"] == "recorded latency" and run["timing"]["recorded_latency_s"] is not None
    failing = {c["name"] for c in row["checks"] if not c["passed"]}
    assert failing == {"the model named a colour", "no prompt scaffold in the answer", "the model answered",
                       "the judge accepts the answer"}
    judged = next(c for c in row["checks"] if c["type"] == "judge")["reasons"][0]
    assert judged.startswith("r1: FAIL the judge could not grade: the judge's reply has no score 1-5")
    assert (app / "cassettes" / "judge.yaml").is_file()  # the echoing judge was recorded and replayed
    assert any("1 of 1 model replies are degenerate" in f for f in run["failures"])
    # the same folder through `llmspell apps run --replay`
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    (tmp_path / "cli-out").mkdir()
    cli = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "apps", "run", str(app), "--replay", "--",
                          "--output-dir", str(tmp_path / "cli-out")], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "answer written" in cli.stdout and "Colour:" in (tmp_path / "cli-out" / "answer.txt").read_text()
    # history: the second run of the same mode is compared with the first
    again = _harness("run", str(app), "--report-dir", str(tmp_path / "rep"), "-p", "no:xdist",
                     "--save-baseline", str(tmp_path / "baseline.json"))
    assert again.returncode == 1
    assert json.loads((tmp_path / "baseline.json").read_text())["apps"]["my-app"]["checks"] == {
        "no prompt scaffold in the answer": False, "the model answered": False, "the model named a colour": False,
        "the judge accepts the answer": False}
    # compared with the good live run as a baseline: every check newly fails, the share rose
    worse = _harness("run", str(app), "--report-dir", str(tmp_path / "rep"), "-p", "no:xdist",
                     "--compare", str(tmp_path / "good" / "results.json"))
    assert "! regression my-app: check 'the model answered' newly fails" in worse.stdout, worse.stdout[-2000:]
    assert "degenerate share rose: 0 % -> 100 %" in worse.stdout
    lines = (tmp_path / "rep" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1])["apps"]["my-app"]["degenerate_share"] == 1.0
    assert json.loads((tmp_path / "rep" / "results.json").read_text())["history"]["compared_with"]["previous run"]
