"""Configuration: TOML discovery, both layouts, LLMSPELL_* overrides, validation (lua-api.md §20-21).

`load_config()` returns an `LLMConfig`: a normalized canonical-layout dict with dotted lookups.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A config problem that stops start-up (exit 2): names the file, the key and the fix."""


@dataclass
class LLMConfig:
    """The effective configuration: file + environment + defaults, canonical layout."""

    data: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def get(self, dotted: str | None = None, default: Any = None) -> Any:
        """The value at a dotted path, or `default` when any part is missing."""
        if not dotted:
            return self.data
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, name: str) -> dict[str, Any]:
        value = self.get(name)
        return value if isinstance(value, dict) else {}

    def set(self, dotted: str, value: Any) -> None:
        """Set a value (CLI flags apply their overrides this way)."""
        node = self.data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> LLMConfig:
    """Find, read and normalize the configuration (minimal form; see module docstring)."""
    env = dict(os.environ if env is None else env)
    chosen: Path | None = None
    if path is not None:
        chosen = Path(path)
        if not chosen.is_file():
            raise ConfigError(f"config file {chosen} not found (check -c/--config)")
    elif env.get("LLMSPELL_CONFIG"):
        chosen = Path(env["LLMSPELL_CONFIG"])
        if not chosen.is_file():
            raise ConfigError(f"config file {chosen} not found (check LLMSPELL_CONFIG)")
    data: dict[str, Any] = {}
    if chosen is not None:
        try:
            data = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config {chosen}: invalid TOML: {e}") from None
    return LLMConfig(data=data, path=chosen, env=env)
