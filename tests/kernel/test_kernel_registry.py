"""Issue 17 item 8: `kernel stop` checks the process identity (start time) before it signals.

A registry record whose pid now belongs to an unrelated live process is never signalled, whether
it names a wrong start time or none at all (records of older kernels); a record that matches is.
Issue 17 item 9 (part): the records and the daemon's log are created 0600.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from llmspell.cli import kernel_cmd
from llmspell.kernel.kernel import process_create_time
from llmspell.settings import KERNEL_REGISTRY_PREFIX


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process (not llmspell) that a stale record's pid could now point at."""
    p = subprocess.Popen(["sleep", "300"])
    try:
        yield p
    finally:
        p.kill()
        p.wait(10)


def write_record(runtime: Path, pid: int, **extra: object) -> Path:
    runtime.mkdir(parents=True, exist_ok=True)
    entry = runtime / f"{KERNEL_REGISTRY_PREFIX}{pid}.json"
    conn = runtime / f"kernel-llmspell-{pid}.json"
    conn.write_text("{}", encoding="utf-8")
    entry.write_text(json.dumps({"pid": pid, "connection_file": str(conn), "owns_connection_file": True,
                                 "started": 0, **extra}), encoding="utf-8")
    return entry


def still_running(p: subprocess.Popen[bytes]) -> bool:
    return p.poll() is None and psutil.Process(p.pid).status() != psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("extra", [
    {"create_time": 12345.0},  # a dead kernel's start time: the pid was reused
    {},                        # a record from an older kernel, without a start time
    {"create_time": "yesterday"},
])
def test_stop_all_never_signals_a_reused_pid(runtime: Path, bystander: subprocess.Popen[bytes],
                                             extra: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    entry = write_record(runtime, bystander.pid, **extra)
    args = argparse.Namespace(all=True, target=None, timeout=1.0, output="text")
    assert kernel_cmd.cmd_stop(args) == kernel_cmd.EXIT_ERROR  # nothing of ours is running
    assert still_running(bystander)
    assert not entry.exists()  # the stale record is cleaned up


def test_stop_kernel_rechecks_identity_before_signalling(runtime: Path, bystander: subprocess.Popen[bytes]) -> None:
    entry = write_record(runtime, bystander.pid, create_time=1.0)
    record = {**json.loads(entry.read_text()), "entry": str(entry)}
    assert "not signalled" in kernel_cmd.stop_kernel(record, timeout=1.0)
    assert still_running(bystander)
    assert not entry.exists() and not Path(record["connection_file"]).exists()


def test_a_matching_record_is_stopped(runtime: Path, bystander: subprocess.Popen[bytes]) -> None:
    write_record(runtime, bystander.pid, create_time=process_create_time(bystander.pid))
    [found] = kernel_cmd.running_kernels()
    assert found["pid"] == bystander.pid
    assert kernel_cmd.stop_kernel(found, timeout=10.0) == "stopped"
    bystander.wait(10)
    assert bystander.returncode == -15


def test_a_real_kernel_records_its_start_time_in_a_private_file(runtime: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("", encoding="utf-8")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "LLMSPELL_STATE_PATH": str(tmp_path / "s.sqlite3")}
    env.pop("JPY_PARENT_PID", None)
    r = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "-c", str(cfg), "kernel", "start", "--daemon",
                        "--idle-timeout", "60"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.split("Kernel pid ")[1].split(";")[0])
    started = psutil.Process(pid).create_time()
    try:
        entry = runtime / f"{KERNEL_REGISTRY_PREFIX}{pid}.json"
        data = json.loads(entry.read_text())
        assert data["create_time"] == pytest.approx(started, abs=0.05)
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
        [log] = runtime.glob("kernel-llmspell-*.log")
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        stop = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "-c", str(cfg), "kernel", "stop", str(pid)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert stop.returncode == 0 and f"pid {pid}: stopped" in stop.stdout, stop.stdout + stop.stderr
    finally:
        if kernel_cmd.same_process({"pid": pid, "create_time": started}):
            os.kill(pid, 9)


def test_a_stray_resume_variable_names_no_file_to_delete(runtime: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """LLMSPELL_KERNEL_RESUME is read (and its file removed) only for hand-over files in the runtime dir."""
    from llmspell.kernel.kernel import RESUME_ENV, _resume_state

    precious = tmp_path / "precious.json"
    precious.write_text('{"execution_count": 7}', encoding="utf-8")
    monkeypatch.setenv(RESUME_ENV, str(precious))
    assert _resume_state() == {}
    assert precious.exists()
    runtime.mkdir(parents=True, exist_ok=True)
    handover = runtime / ".llmspell-resume-1-ab.json"
    handover.write_text('{"execution_count": 7}', encoding="utf-8")
    monkeypatch.setenv(RESUME_ENV, str(handover))
    assert _resume_state() == {"execution_count": 7}
    assert not handover.exists()
