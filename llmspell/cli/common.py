"""Helpers shared by the CLI commands: config loading with exit 2, result output formats."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmspell.config import ConfigError, LLMConfig, Overrides, load_config


def load_config_or_exit(args: argparse.Namespace, overrides: Overrides | None = None) -> LLMConfig:
    """Load the configuration named by -c/--config (or discovered) with the command line's overrides
    (`--traffic`, `--rag`, `--trace`, or `overrides`); exit 2 with the reason on failure."""
    try:
        config = load_config(getattr(args, "config", None), overrides=overrides or Overrides.from_args(args))
    except ConfigError as e:
        sys.stderr.write(f"llmspell: {e}\n")
        raise SystemExit(2) from None
    for w in config.warnings:
        sys.stderr.write(f"warning: {w}\n")
    return config


def emit(payload: Any, fmt: str) -> None:
    """Print a result as JSON or YAML on stdout."""
    if fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(payload, sort_keys=True, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=2) + "\n")
    sys.stdout.flush()
