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
