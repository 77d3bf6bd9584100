"""The pytest plugin end to end in a child pytest: items, failures as assertions, gates, reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import CASSETTES_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

APP = """
[app]
name = "{name}"
layer = 1
agents = 1
[expect]
files = []
output = ["hello from {name}"]
[budget]
runtime_seconds = 30
cost_usd = 0.01
"""


def _app(root: Path, name: str, code: str, manifest: str = APP) -> None:
    d = root / "apps" / name
    d.mkdir(parents=True)
    (d / "app.toml").write_text(manifest.format(name=name))
    (d / "main.lua").write_text(code)
    (d / "config.toml").write_text("")


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-p", "no:cacheprovider", "--rootdir", str(root),
           "-o", "addopts=", str(root / "apps"), f"--apps-report-dir={root / 'reports'}", "--apps-kernel=python3", *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=240, env=None)


def test_runs_each_app_and_repetition_and_fails_gates_like_assertions(tmp_path: Path) -> None:
    # The stock python3 kernel runs the "main.lua" code but reports no llmspell figures, so the
    # judge must fail every run on that, and the simple-group gate must fail after them.
    _app(tmp_path, "one", "print('hello from one')")
    _app(tmp_path, "two", "raise RuntimeError('cassette says no')")
    proc = _pytest(tmp_path, "--apps-repeat=2")
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "apps/one/app.toml::one[1]" in out and "apps/two/app.toml::two[2]" in out
    assert "assert the kernel reported no figures" in out
    assert "run did not succeed: error: RuntimeError: cassette says no" in out
    assert "FAILED harness::gate[success rate, simple apps]" in out
    assert "[apps 4/4]" in out
    data = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert (data["runs_total"], data["runs_passed"], data["repetitions"]) == (4, 0, 2)
    assert (tmp_path / "reports" / "logs" / "two-r2.log").read_text().count("cassette says no") >= 1
    assert "<svg" in (tmp_path / "reports" / "index.html").read_text()


def test_malformed_manifest_is_a_clear_collection_error(tmp_path: Path) -> None:
    _app(tmp_path, "bad", "print(1)", manifest=APP.replace("layer = 1", "layer = 7"))
    proc = _pytest(tmp_path)
    assert proc.returncode != 0
    assert "malformed app.toml:" in proc.stdout and "app.layer: expected an integer 1-6, got 7" in proc.stdout


def test_the_cli_wraps_the_same_pytest_run() -> None:
    from harness.__main__ import _parser, pytest_args

    ns, ns.pytest_args = _parser().parse_known_args(["run", "file-organizer", "--repeat", "2", "-n", "auto", "-x"])
    args = pytest_args(ns, "replay", "local", 2)
    assert args[-1] == "-x"
    assert args[:2] == ["-p", "harness.plugin"]
    assert str(REPO_ROOT / "apps" / "file-organizer") in args and "--apps-repeat=2" in args
    assert args[args.index("-n"):args.index("-n") + 4] == ["-n", "auto", "--dist", "loadfile"]


MISS_APP = """
[app]
name = "{name}"
layer = 1
agents = 1
[expect]
files = ["note.txt"]
output = ["asked"]
[budget]
runtime_seconds = 60
cost_usd = 0.01
"""

ASKS = """
local out = ARGS["output-dir"]
local a = Agent.builder():name("asker"):model("openai/gpt-4o-mini"):max_tokens(8):build()
Tool.invoke("file_operations", {operation = "write", path = out .. "/note.txt", input = "before the call"})
print("asked " .. a:execute({text = "a question nobody recorded"}).text)
"""

QUIET = """
local out = ARGS["output-dir"]
Agent.builder():name("quiet"):model("openai/gpt-4o-mini"):build()
Tool.invoke("file_operations", {operation = "write", path = out .. "/note.txt", input = "no call needed"})
print("asked nothing")
"""


def _llmspell_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("llmspell")
    except NoSuchKernel:
        pytest.xfail("the llmspell kernelspec is not installed (python -m llmspell.kernel.kernelspec install --sys-prefix)")


DIES = 'print("going down")\nos.execute("kill -9 $PPID")\nprint("unreachable")\n'
SPINS = 'print("spinning")\nlocal n = 0\nwhile true do n = n + 1 end\n'


def test_bad_runs_are_reported_and_the_next_app_still_runs(tmp_path: Path) -> None:
    """A cassette miss, a kernel killed mid-app, an app over its budget; then a good app passes."""
    _llmspell_kernel()
    _app(tmp_path, "asks", ASKS, manifest=MISS_APP)
    _app(tmp_path, "dies", DIES, manifest=MISS_APP)
    _app(tmp_path, "spins", SPINS, manifest=MISS_APP.replace("runtime_seconds = 60", "runtime_seconds = 2"))
    _app(tmp_path, "quiet", QUIET, manifest=MISS_APP)
    # A real recording that does not hold this app's request (the file-organizer's cassette).
    recorded = CASSETTES_DIR / "file-organizer" / "cassette.yaml"
    (tmp_path / "cassettes" / "asks").mkdir(parents=True)
    if recorded.is_file():
        shutil.copy(recorded, tmp_path / "cassettes" / "asks" / "cassette.yaml")
    proc = _pytest(tmp_path, "--apps-kernel=llmspell", f"--apps-cassettes={tmp_path / 'cassettes'}", "-p", "no:xdist")
    out = proc.stdout
    assert "assert run did not succeed: a cassette miss" in out, out
    data = json.loads((tmp_path / "reports" / "results.json").read_text())
    runs = {a["app"]: a["runs"][0] for a in data["apps"]}
    assert runs["asks"]["cassette_miss"] and "replay:" in runs["asks"]["error"]
    log = (tmp_path / "reports" / "logs" / "asks-r1.log").read_text()
    if recorded.is_file():
        assert "replay: no recorded response for POST" in log and "a question nobody recorded" in log
    else:
        assert "replay: no cassette at" in log
    assert runs["dies"]["status"] == "kernel_died" and "died" in runs["dies"]["error"]
    assert runs["spins"]["status"] == "timeout" and runs["spins"]["wall_s"] < 15
    assert "over the runtime budget of 2 s; interrupted" in runs["spins"]["error"]
    assert runs["quiet"]["passed"], runs["quiet"]["failures"]
    pids = {a["app"]: a["runs"][0]["rss_mb"] for a in data["apps"]}
    assert pids["quiet"] > 0, "the app after the dead kernel ran on a fresh one"


def test_memory_runs_gate_rss_on_one_kernel(tmp_path: Path) -> None:
    _app(tmp_path, "one", "print('hello from one')")
    _app(tmp_path, "two", "print('hello from two')")
    proc = _pytest(tmp_path, "--apps-memory=7", "--apps-memory-apps=one", "--apps-no-gates", "-v")
    assert "apps/one/app.toml::one[memory x7] PASSED" in proc.stdout, proc.stdout
    assert "two[memory" not in proc.stdout
    data = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert len(data["memory_rss_bytes"]["one"]) == 7 and min(data["memory_rss_bytes"]["one"]) > 0
    assert any(g["name"] == "memory stability, one (7 runs)" and g["passed"] for g in data["gates"])
    assert proc.returncode == 1  # the python3 kernel reports no llmspell figures, so the plain runs fail
