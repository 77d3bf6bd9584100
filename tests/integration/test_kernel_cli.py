"""`llmspell kernel install|start|status|stop|connect` and `llmspell run --connect` on real kernel processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmspell.cli.kernel_cmd import _alive
from tests.kernel.kernel_support import jupyter_env, kernel_env  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(180)


def llmspell(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmspell.cli.main", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    e = kernel_env(home)
    e["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    return e


def wait_until(cond, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_install_writes_a_kernelspec_with_argv_and_logos(tmp_path: Path, env: dict[str, str]) -> None:
    r = llmspell(env, "kernel", "install", "--prefix", str(tmp_path / "pfx"), "--interrupt-mode", "signal")
    assert r.returncode == 0, r.stderr
    spec_dir = tmp_path / "pfx" / "share" / "jupyter" / "kernels" / "llmspell"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "llmspell.kernel", "-f", "{connection_file}"]
    assert spec["language"] == "lua" and spec["interrupt_mode"] == "signal"
    assert spec["metadata"]["debugger"] is True
    for logo in ("logo-svg.svg", "logo-32x32.png", "logo-64x64.png"):
        assert (spec_dir / logo).stat().st_size > 0
    assert (spec_dir / "logo-64x64.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_daemon_status_run_connect_stop(tmp_path: Path, env: dict[str, str]) -> None:
    conn = tmp_path / "runtime" / "kernel-llmspell-test.json"
    r = llmspell(env, "kernel", "start", "--daemon", "--connection-file", str(conn))
    assert r.returncode == 0, r.stderr
    assert conn.exists()
    info = json.loads(conn.read_text())
    assert info["key"] and info["signature_scheme"] == "hmac-sha256" and info["shell_port"] > 0
    assert oct(conn.stat().st_mode & 0o777) == "0o600"
    try:
        status = llmspell(env, "kernel", "status")
        assert status.returncode == 0 and "ready" in status.stdout and str(conn) in status.stdout
        as_json = json.loads(llmspell(env, "--output", "json", "kernel", "status").stdout)
        pid = as_json["kernels"][0]["pid"]

        script = tmp_path / "job.lua"
        script.write_text("print('arg', ARGS.input, ARGS[1])\nio.stderr:write('to stderr\\n')\nos.exit(7)\n")
        run = llmspell(env, "run", "--connect", str(conn), str(script), "--", "--input", "x.txt", "pos")
        assert run.stdout == "arg\tx.txt\tpos\n"
        assert run.stderr == "to stderr\n"
        assert run.returncode == 7
        bad = tmp_path / "bad.lua"
        bad.write_text("error('remote failure')\n")
        run = llmspell(env, "run", "--connect", str(conn), str(bad))
        assert run.returncode == 1 and "remote failure" in run.stderr

        console = llmspell(env, "kernel", "connect", str(pid), stdin="x = 20\nfor i = 1, 2 do\n  print(i)\nend\nx * 2 + 2\n")
        assert console.returncode == 0, console.stderr
        assert "1\n2\n" in console.stdout and "Out[" in console.stdout and "42" in console.stdout

        stop = llmspell(env, "kernel", "stop", str(pid))
        assert stop.returncode == 0 and "stopped" in stop.stdout
        assert not conn.exists()
        assert "No llmspell kernels are running" in llmspell(env, "kernel", "status").stdout
    finally:
        llmspell(env, "kernel", "stop", "--all")


def test_idle_timeout_ends_the_kernel_and_removes_its_files(tmp_path: Path, env: dict[str, str]) -> None:
    r = llmspell(env, "kernel", "start", "--daemon", "--idle-timeout", "0.5")
    assert r.returncode == 0, r.stderr
    runtime = tmp_path / "runtime"
    conns = list(runtime.glob("kernel-llmspell-*.json"))
    assert len(conns) == 1
    wait_until(lambda: not conns[0].exists() and not list(runtime.glob("llmspell-pid-*.json")))


def test_stop_falls_back_to_sigkill(tmp_path: Path, env: dict[str, str]) -> None:
    code = ("import signal, time, sys\n"
            "sys.argv = ['k', '-f', sys.argv[1]]\n"
            "from llmspell.kernel.__main__ import main\n"
            "from llmspell.kernel import kernel as k\n"
            "orig = k.Kernel.start\n"
            "def start(self):\n"
            "    orig(self)\n"
            "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "k.Kernel.start = start\n"
            "main()\n")
    conn = tmp_path / "runtime" / "kernel-llmspell-stubborn.json"
    proc = subprocess.Popen([sys.executable, "-c", code, str(conn)], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (tmp_path / "runtime" / f"llmspell-pid-{proc.pid}.json").exists())
        stop = llmspell(env, "kernel", "stop", str(proc.pid), "--timeout", "0.5")
        assert "killed" in stop.stdout
        assert proc.wait(timeout=20) != 0
        assert not conn.exists()
        assert not (tmp_path / "runtime" / f"llmspell-pid-{proc.pid}.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not os.path.exists(conn)


def test_a_kernel_exits_when_the_manager_that_started_it_dies(env: dict[str, str],
                                                               jupyter_env: dict[str, str]) -> None:  # noqa: F811
    code = ("import os\n"
            "from jupyter_client.manager import KernelManager\n"
            "km = KernelManager(kernel_name='llmspell')\n"
            "km.start_kernel()\n"
            "print(km.provisioner.pid, km.connection_file, flush=True)\n"
            "os._exit(0)\n")
    out = Path(env["HOME"]) / "manager.out"
    with open(out, "w") as f:  # not a pipe: the orphaned kernel keeps the manager's stdio open
        subprocess.run([sys.executable, "-c", code], env={**env, **jupyter_env}, stdout=f,
                       stderr=subprocess.DEVNULL, timeout=60)
    pid_s, conn = out.read_text().split()
    pid = int(pid_s)
    try:
        wait_until(lambda: not _alive(pid), timeout=30)
        wait_until(lambda: not Path(conn).exists(), timeout=5)
    finally:
        if _alive(pid):
            os.kill(pid, 9)
