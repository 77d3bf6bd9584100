"""The local model server wrapper: clear errors before anything is recorded."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.record import LocalModelServer, ServerError, clear_cassettes


def test_port_in_use_is_refused_before_starting(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        server = LocalModelServer(log_path=tmp_path / "server.log", port=s.getsockname()[1])
        with pytest.raises(ServerError, match="is in use: stop whatever listens there"):
            server.start()


def test_the_default_port_is_a_free_one(tmp_path: Path) -> None:
    a = LocalModelServer(log_path=tmp_path / "server.log")
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", a.port)) != 0
    assert a.base_url == f"http://127.0.0.1:{a.port}/v1"


def test_missing_server_python_names_the_fix(tmp_path: Path) -> None:
    server = LocalModelServer(log_path=tmp_path / "server.log", port=1, python=str(tmp_path / "no-python"))
    with pytest.raises(ServerError, match="set LLMSPELL_LIVE_PYTHON or --server-python"):
        server.model_path()
    server.stop()  # nothing started: a no-op


def test_clear_cassettes_only_touches_the_named_apps(tmp_path: Path) -> None:
    for app in ("a", "b"):
        (tmp_path / app).mkdir()
        (tmp_path / app / "cassette.yaml").write_text("interactions: []\n")
    clear_cassettes(tmp_path, ["a", "missing"])
    assert not (tmp_path / "a").exists() and (tmp_path / "b" / "cassette.yaml").exists()
