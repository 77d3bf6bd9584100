"""The kernel driver over real sockets, exercised with the stock python3 kernel (ipykernel).

The llmspell kernel is driven the same way; these tests pin the driver's own behaviour:
streaming into the log, the runtime budget (interrupt), and a kernel dying mid-run.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.kernel_driver import KernelPool, KernelSettings

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path) -> KernelSettings:
    return KernelSettings(traffic="replay", cassette_dir=tmp_path / "cassettes", config_path=tmp_path / "config.toml",
                          state_dir=tmp_path / "state", cwd=tmp_path, kernel_name="python3", startup_timeout_s=60)


@pytest.fixture
def pool() -> KernelPool:
    p = KernelPool()
    yield p
    p.close()


def test_streams_output_and_passes_environment(tmp_path: Path, pool: KernelPool) -> None:
    driver = pool.get("demo", _settings(tmp_path))
    log = io.StringIO()
    code = ("import os, sys\nprint('line one')\nprint(os.environ['LLMSPELL_TRAFFIC'], os.environ['LLMSPELL_CASSETTE_DIR'])\n"
            "sys.stderr.write('warned\\n')")
    r = driver.run("demo", 1, code, ["--output-dir", "x"], tmp_path, log, timeout_s=30)
    assert r.status == "ok", r.error
    assert r.stdout.splitlines() == ["line one", f"replay {tmp_path / 'cassettes'}"]
    assert "warned" in r.stderr and "[stderr] warned" in log.getvalue() and "line one" in log.getvalue()
    assert r.rss_bytes > 0 and r.kernel_pid == driver.pid
    assert pool.get("demo", _settings(tmp_path)) is driver, "repetitions reuse the app's kernel"


def test_error_reply_is_reported(tmp_path: Path, pool: KernelPool) -> None:
    r = pool.get("demo", _settings(tmp_path)).run("demo", 1, "raise ValueError('bad input')", [], tmp_path,
                                                  io.StringIO(), timeout_s=30)
    assert (r.status, r.error_name, r.error_value) == ("error", "ValueError", "bad input")


def test_budget_interrupts_the_run(tmp_path: Path, pool: KernelPool) -> None:
    driver = pool.get("demo", _settings(tmp_path))
    log = io.StringIO()
    r = driver.run("demo", 1, "import time\nprint('start', flush=True)\ntime.sleep(60)", [], tmp_path, log, timeout_s=1.0)
    assert r.status == "timeout" and "over the runtime budget of 1 s" in r.error
    assert r.wall_s < 15 and "runtime budget exceeded" in log.getvalue()
    assert driver.alive(), "an interrupt that lands keeps the kernel"
    ok = driver.run("demo", 2, "print('after')", [], tmp_path, io.StringIO(), timeout_s=30)
    assert ok.status == "ok" and ok.stdout == "after\n"


def test_dead_kernel_is_reported_and_replaced(tmp_path: Path, pool: KernelPool) -> None:
    driver = pool.get("demo", _settings(tmp_path))
    first_pid = driver.pid
    log = io.StringIO()
    r = driver.run("demo", 1, "import os\nos._exit(3)", [], tmp_path, log, timeout_s=30)
    assert r.status == "kernel_died" and "died" in r.error
    fresh = pool.get("demo", _settings(tmp_path))
    assert fresh.pid != first_pid
    assert fresh.run("demo", 2, "print(2)", [], tmp_path, io.StringIO(), timeout_s=30).status == "ok"
