"""llmspell validation harness: a pytest plugin that runs the example apps on a real kernel."""

from __future__ import annotations

from pathlib import Path

#: The repository root (the harness ships beside the apps/ and cassettes/ folders).
REPO_ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = REPO_ROOT / "apps"
CASSETTES_DIR = REPO_ROOT / "cassettes"
REPORTS_DIR = REPO_ROOT / "reports"
