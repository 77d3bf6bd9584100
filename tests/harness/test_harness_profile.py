"""Harness profiles: provider routing laid over an app's config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.profile import LOCAL_PORT, effective_config, local_overlay, merge, to_toml


def test_local_profile_routes_both_providers(tmp_path: Path) -> None:
    app = tmp_path / "config.toml"
    app.write_text('[providers]\ndefault_provider = "openai"\n[providers.openai]\nmax_retries = 2\n[rag]\nenabled = true\n')
    data = tomllib.loads(effective_config(app, "local", tmp_path / "k" / "config.toml").read_text())
    for name in ("openai", "anthropic"):
        p = data["providers"][name]
        assert p["base_url"] == f"http://127.0.0.1:{LOCAL_PORT}/v1" and p["provider_type"] == "openai"
        assert p["force_model"] == "gemma-3-270m"
    assert data["providers"]["default_provider"] == "openai" and data["rag"] == {"enabled": True}
    assert effective_config(app, "none", tmp_path / "x.toml") == app
    with pytest.raises(ValueError, match="unknown harness profile"):
        effective_config(app, "cloud", tmp_path / "y.toml")


def test_toml_writer_round_trips() -> None:
    data = merge({"a": 1, "t": {"x": [1, "two"], "n": {"deep": True}}, "s": "q\"uote"}, local_overlay(9999))
    assert tomllib.loads(to_toml(data)) == data


def test_routed_server_api_is_completions_by_default_and_chat_on_request(tmp_path: Path) -> None:
    """`--api chat` (harness live/record) routes the apps to /chat/completions of an instruction-tuned server."""
    from harness.__main__ import _parser, pytest_args

    app = tmp_path / "config.toml"
    app.write_text('[providers]\ndefault_provider = "openai"\n')
    url = "http://127.0.0.1:9/v1"
    plain = tomllib.loads(effective_config(app, "none", tmp_path / "a.toml", url).read_text())
    chat = tomllib.loads(effective_config(app, "none", tmp_path / "b.toml", url, api="chat").read_text())
    assert plain["providers"]["openai"]["api"] == "completions"
    assert chat["providers"]["openai"]["api"] == chat["providers"]["anthropic"]["api"] == "chat"
    with pytest.raises(ValueError, match="unknown provider api"):
        local_overlay(api="responses")
    ns = _parser().parse_args(["live", "file-organizer", "--base-url", url, "--api", "chat"])
    assert "--apps-api=chat" in pytest_args(ns, "live", "none", 1, url)
