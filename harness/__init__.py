"""llmspell validation harness: a pytest plugin that runs the example apps on a real kernel."""

from __future__ import annotations

from pathlib import Path

from llmspell.resources import apps_dir, cassettes_dir

_CHECKOUT = Path(__file__).resolve().parent.parent
#: The repository root in a checkout (the harness beside apps/); once installed, the working directory.
REPO_ROOT = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
#: The apps and their cassettes: the checkout's, or the copies shipped in the llmspell package.
APPS_DIR = apps_dir()
CASSETTES_DIR = cassettes_dir()
REPORTS_DIR = REPO_ROOT / "reports"
