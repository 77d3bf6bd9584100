"""Where the example apps and their cassettes live: inside the installed package, else the checkout.

A wheel carries apps/ and cassettes/ as llmspell/_apps and llmspell/_cassettes (pyproject.toml,
force-include), so `llmspell apps ...` works after `pip install .` or `pipx install .` from any
directory. An editable install or a plain checkout has no copies; there the repository's own
folders are used, so edits to an app take effect at once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root when llmspell runs from a checkout (editable install); meaningless otherwise.
CHECKOUT_ROOT = PACKAGE_DIR.parent


class ResourceError(LookupError):
    """The apps or cassettes cannot be found, or the harness is not importable."""


def _bundled_or_checkout(bundled: str, folder: str, var: str, env: Mapping[str, str] | None) -> Path:
    """$var if set (in `env`, default the process environment as config reads it), else the copy inside the
    package, else <checkout>/<folder>."""
    if env is None:
        from llmspell.config import environment

        env = environment()
    if env.get(var):
        return Path(env[var])
    inside = PACKAGE_DIR / bundled
    if inside.is_dir():
        return inside
    return CHECKOUT_ROOT / folder


def apps_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder holding <name>/app.toml for every example app ($LLMSPELL_APPS_DIR overrides)."""
    return _bundled_or_checkout("_apps", "apps", "LLMSPELL_APPS_DIR", env)


def cassettes_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder holding <app>/cassette.yaml, the apps' recorded traffic ($LLMSPELL_CASSETTES_DIR overrides)."""
    return _bundled_or_checkout("_cassettes", "cassettes", "LLMSPELL_CASSETTES_DIR", env)


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


def harness_main() -> int:
    """The `llmspell-harness` command: the harness's CLI under whichever name it is importable."""
    try:
        main = harness_module("__main__").main
    except ModuleNotFoundError as e:
        raise SystemExit(f"llmspell-harness: {missing_extra_message(e)}") from None
    return int(main() or 0)


#: Extras named in error messages, most specific first (test, bench and dev include others).
_EXTRA_PREFERENCE = ("rag", "harness", "postgres", "otel", "live")


def extra_for_module(module: str, requirements: list[str] | None = None) -> str | None:
    """The extra that provides an import name (numpy -> rag), from the installed metadata (or `requirements`)."""
    if requirements is None:
        from importlib.metadata import PackageNotFoundError, requires

        try:
            requirements = requires("llmspell") or []
        except PackageNotFoundError:
            return None
    top = module.split(".")[0].replace("_", "-").lower()
    exact: set[str] = set()
    prefixed: set[str] = set()
    for req in requirements:
        spec, _, marker = req.partition(";")
        if "extra ==" not in marker:
            continue
        name = re.split(r"[\[<>=~!; ]", spec.strip(), maxsplit=1)[0].replace("_", "-").replace(".", "-").lower()
        extra = marker.split("extra ==", 1)[1].strip().strip("'\"")
        if name == top:
            exact.add(extra)
        elif name.startswith(top + "-"):
            prefixed.add(extra)
    found = exact or prefixed
    return next((e for e in _EXTRA_PREFERENCE if e in found), min(found) if found else None)


def missing_extra_message(error: ModuleNotFoundError) -> str:
    """A missing optional package as an instruction: which extra to install."""
    module = (error.name or "").split(".")[0] or str(error)
    extra = extra_for_module(module)
    if extra is None:
        return f"the Python package {module!r} is missing ({error}); reinstall llmspell"
    return f"this needs the optional package {module!r}: pip install 'llmspell[{extra}]'"
