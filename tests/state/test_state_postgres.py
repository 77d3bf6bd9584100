"""The PostgreSQL backend against a real server started on loopback from Debian's package."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres


def _bin_dir() -> str | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in dirs:
        if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    """Start a throwaway PostgreSQL server (initdb + pg_ctl) on a free loopback port."""
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'llmspell[postgres]')")
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(apt-get install postgresql)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser to drop privileges for initdb")
        prefix = [runuser, "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="llmspell-pg-"))
    data = base / "data"
    if prefix:
        shutil.chown(base, "postgres")
        os.chmod(base, 0o700)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run([*prefix, f"{bindir}/initdb", "-D", str(data), "-U", "llmspell", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, env=env)
    log = base / "log.txt"
    subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                    f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off", "start"], check=True, capture_output=True,
                   env=env)
    dsn = f"postgresql://llmspell@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield dsn
    finally:
        subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, env=env)
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_round_trip_and_prefixes(pg_dsn: str) -> None:
    from llmspell.state import StateStore
    from llmspell.state.postgres import PostgresBackend

    s = StateStore(PostgresBackend(pg_dsn))
    s.clear("pg")
    s.save("pg", ":a", {"n": 1, "l": [1, 2]})
    s.save("pg", "b", "sk-abcdefghijklmnopqrstuvwxyz123")
    s.save("pg1", "c", 3)
    assert s.load("pg", "a") == {"n": 1, "l": [1, 2]}
    assert s.load("pg", "b") == "[REDACTED]"
    assert s.list_keys("pg") == ["a", "b"]
    assert s.delete("pg", "a") and not s.delete("pg", "a")
    assert s.clear("pg") == 1 and s.load("pg1", "c") == 3
    assert s.migration_status() == {"current": 2, "latest": 2}
    assert s.storage_usage()["backend"] == "postgres"
    s.backend.put_many([("pg:x", b"1"), ("pg:y", b"2")], delete=["pg1:c"])
    assert s.list_keys("pg") == ["x", "y"] and not s.exists("pg1", "c")


def test_two_stores_share_one_database(pg_dsn: str) -> None:
    from llmspell.config import LLMConfig
    from llmspell.state import build_state

    cfg = LLMConfig(data={"state": {"backend": "postgres", "connection_string_env": "PG_TEST_DSN"}},
                    env={"PG_TEST_DSN": pg_dsn})
    a, b = build_state(cfg), build_state(cfg)
    a.save("shared", "k", 41)
    assert b.load("shared", "k") == 41
    b.save("shared", "k", 42)
    assert a.load("shared", "k") == 42
    a.close()
    b.close()


def test_bad_dsn_is_a_clear_error_on_first_use() -> None:
    pytest.importorskip("psycopg")
    from llmspell.config import LLMConfig
    from llmspell.state import StateError, build_state

    cfg = LLMConfig(data={"state": {"backend": "postgres", "url": f"postgresql://x@127.0.0.1:{_free_port()}/db"}},
                    env={})
    s = build_state(cfg)
    with pytest.raises(StateError, match="cannot connect to PostgreSQL"):
        s.load("a", "b")
