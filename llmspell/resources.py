"""Where the example apps and their cassettes live: inside the installed package, else the checkout.

A wheel carries apps/ and cassettes/ as llmspell/_apps and llmspell/_cassettes (pyproject.toml,
force-include), so `llmspell apps ...` works after `pip install .` or `pipx install .` from any
directory. An editable install or a plain checkout has no copies; there the repository's own
folders are used, so edits to an app take effect at once.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root when llmspell runs from a checkout (editable install); meaningless otherwise.
CHECKOUT_ROOT = PACKAGE_DIR.parent


class ResourceError(LookupError):
    """The apps or cassettes cannot be found, or the harness is not importable."""


def _bundled_or_checkout(bundled: str, folder: str, env: str) -> Path:
    """$env if set, else the copy inside the package, else <checkout>/<folder>."""
    if os.environ.get(env):
        return Path(os.environ[env])
    inside = PACKAGE_DIR / bundled
    if inside.is_dir():
        return inside
    return CHECKOUT_ROOT / folder


def apps_dir() -> Path:
    """The folder holding <name>/app.toml for every example app ($LLMSPELL_APPS_DIR overrides)."""
    return _bundled_or_checkout("_apps", "apps", "LLMSPELL_APPS_DIR")


def cassettes_dir() -> Path:
    """The folder holding <app>/cassette.yaml, the apps' recorded traffic ($LLMSPELL_CASSETTES_DIR overrides)."""
    return _bundled_or_checkout("_cassettes", "cassettes", "LLMSPELL_CASSETTES_DIR")


def harness_module(name: str) -> ModuleType:
    """A harness module: `llmspell_harness.<name>` when installed, `harness.<name>` from a checkout."""
    errors = []
    for package in ("llmspell_harness", "harness"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as e:
            if e.name not in (package, f"{package}.{name}"):
                raise
            errors.append(str(e))
    raise ResourceError(f"the llmspell harness is not importable ({'; '.join(errors)}); reinstall llmspell")
