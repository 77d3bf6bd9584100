"""App manifests (apps/<name>/app.toml): parsing, validation and discovery."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .checks import Check, CheckError, parse_checks

#: Agent-count groups of targets.md, with their upper bounds (inclusive).
GROUPS: tuple[tuple[str, int], ...] = (("simple", 4), ("complex", 8), ("expert", 10**9))

_SECTIONS: dict[str, set[str]] = {
    "app": {"name", "title", "layer", "agents", "rag", "description", "args", "config"},
    "expect": {"files", "output", "min_files"},
    "budget": {"runtime_seconds", "cost_usd"},
}
#: Optional sections: the judge model of `judge` checks, and the content checks themselves.
_OPTIONAL: dict[str, set[str]] = {"judge": {"model"}}
_REQUIRED: dict[str, set[str]] = {
    "app": {"name", "layer", "agents"},
    "expect": {"files", "output"},
    "budget": {"runtime_seconds", "cost_usd"},
}


class ManifestError(ValueError):
    """An app.toml that cannot be used: names the file, the key and what is expected."""


def group_for(agents: int) -> str:
    """The targets.md group of an app with this many agents: simple, complex or expert."""
    for name, upper in GROUPS:
        if agents <= upper:
            return name
    return GROUPS[-1][0]


@dataclass(frozen=True)
class AppManifest:
    """What one app declares about itself: the contract the harness judges it by."""

    name: str
    directory: Path
    layer: int
    agents: int
    files: tuple[str, ...]
    output: tuple[str, ...]
    runtime_seconds: float
    cost_usd: float
    title: str = ""
    description: str = ""
    rag: bool = False
    args: tuple[str, ...] = ()
    min_files: int = 0
    config_name: str = "config.toml"
    checks: tuple[Check, ...] = field(default=(), compare=False)
    judge_model: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def group(self) -> str:
        return group_for(self.agents)

    @property
    def main_lua(self) -> Path:
        return self.directory / "main.lua"

    @property
    def config_path(self) -> Path:
        return self.directory / self.config_name


def _fail(path: Path, key: str, problem: str) -> ManifestError:
    return ManifestError(f"{path}: {key}: {problem}")


def _typed(path: Path, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise _fail(path, key, f"expected {what}, got a boolean")
    if not isinstance(value, kind):
        raise _fail(path, key, f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    _typed(path, key, value, list, "an array of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _fail(path, f"{key}[{i}]", f"expected a non-empty string, got {item!r}")
    return tuple(value)


def _relative_file(path: Path, key: str, rel: str) -> str:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or rel.startswith("~"):
        raise _fail(path, key, f"'{rel}' must be relative to the output directory (no '/', '..' or '~')")
    return rel


def parse_manifest(text: str, path: Path, judge_model: str | None = None) -> AppManifest:
    """Validate the TOML text of an app.toml at `path`; raise ManifestError naming the problem.

    `judge_model` (the harness's --apps-judge-model) replaces the app's `[judge] model`.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path}: invalid TOML: {e}") from None
    known = set(_SECTIONS) | set(_OPTIONAL) | {"checks"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(path, unknown[0], f"unknown section (expected {', '.join(sorted(known))})")
    judge = data.get("judge", {})
    _typed(path, "[judge]", judge, dict, "a table")
    extra_judge = sorted(set(judge) - _OPTIONAL["judge"])
    if extra_judge:
        raise _fail(path, f"judge.{extra_judge[0]}", "unknown key (expected model)")
    app_judge = _typed(path, "judge.model", judge.get("model", ""), str, "a model name like \"openai/gpt-4o-mini\"")
    if "model" in judge and not app_judge.strip():
        raise _fail(path, "judge.model", "expected a model name like \"openai/gpt-4o-mini\", got an empty string")
    judge_model = judge_model or app_judge
    try:
        checks = parse_checks(data.get("checks"), path.parent, judge_model)
    except CheckError as e:
        raise _fail(path, e.key, e.problem) from None
    for section, keys in _SECTIONS.items():
        table = data.get(section)
        if table is None:
            raise _fail(path, f"[{section}]", "missing section")
        _typed(path, f"[{section}]", table, dict, "a table")
        extra = sorted(set(table) - keys)
        if extra:
            raise _fail(path, f"{section}.{extra[0]}", f"unknown key (expected one of {', '.join(sorted(keys))})")
        missing = sorted(_REQUIRED[section] - set(table))
        if missing:
            raise _fail(path, f"{section}.{missing[0]}", "required key is missing")
    app, expect, budget = data["app"], data["expect"], data["budget"]
    name = _typed(path, "app.name", app["name"], str, "a string")
    if path.parent.name and path.name == "app.toml" and name != path.parent.name:
        raise _fail(path, "app.name", f"'{name}' does not match its directory '{path.parent.name}'")
    layer = _typed(path, "app.layer", app["layer"], int, "an integer 1-6")
    if not 1 <= layer <= 6:
        raise _fail(path, "app.layer", f"expected an integer 1-6, got {layer}")
    agents = _typed(path, "app.agents", app["agents"], int, "a positive integer")
    if agents < 1:
        raise _fail(path, "app.agents", f"expected a positive integer, got {agents}")
    files = tuple(_relative_file(path, f"expect.files[{i}]", f)
                  for i, f in enumerate(_strings(path, "expect.files", expect["files"])))
    output = _strings(path, "expect.output", expect["output"])
    min_files = _typed(path, "expect.min_files", expect.get("min_files", 0), int, "a non-negative integer")
    if min_files < 0:
        raise _fail(path, "expect.min_files", f"expected a non-negative integer, got {min_files}")
    runtime = float(_typed(path, "budget.runtime_seconds", budget["runtime_seconds"], (int, float),
                           "a positive number of seconds"))
    cost = float(_typed(path, "budget.cost_usd", budget["cost_usd"], (int, float), "a non-negative number"))
    if runtime <= 0:
        raise _fail(path, "budget.runtime_seconds", f"expected a positive number, got {runtime}")
    if cost < 0:
        raise _fail(path, "budget.cost_usd", f"expected a non-negative number, got {cost}")
    config_name = _typed(path, "app.config", app.get("config", "config.toml"), str, "a file name")
    return AppManifest(
        name=name, directory=path.parent, layer=layer, agents=agents, files=files, output=output,
        runtime_seconds=runtime, cost_usd=cost, min_files=min_files, config_name=config_name,
        title=_typed(path, "app.title", app.get("title", name), str, "a string"),
        description=_typed(path, "app.description", app.get("description", ""), str, "a string"),
        rag=_typed(path, "app.rag", app.get("rag", False), bool, "a boolean"),
        args=_strings(path, "app.args", app.get("args", [])),
        checks=checks, judge_model=judge_model or "",
    )


def load_manifest(path: Path, judge_model: str | None = None) -> AppManifest:
    """Read and validate one app.toml; also check that main.lua and the config file exist."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ManifestError(f"{path}: cannot read: {e.strerror or e}") from None
    manifest = parse_manifest(text, path, judge_model)
    if not manifest.main_lua.is_file():
        raise ManifestError(f"{path}: app '{manifest.name}' has no main.lua beside its app.toml")
    if not manifest.config_path.is_file():
        raise ManifestError(f"{path}: app.config: '{manifest.config_name}' not found beside app.toml")
    return manifest


def discover(apps_dir: Path, names: list[str] | None = None, judge_model: str | None = None) -> list[AppManifest]:
    """Load the manifests under `apps_dir`, ordered by layer then name; `names` selects some.

    A name that is a path (`./my-app`, `/abs/app`) is a user's own app folder with main.lua and app.toml.
    """
    found = {p.parent.name: p for p in sorted(Path(apps_dir).glob("*/app.toml"))}
    if names:
        folders = {n: Path(n) / "app.toml" for n in names if "/" in n or n.startswith(".")}
        unknown = [n for n in names if n not in found and n not in folders]
        if unknown:
            raise ManifestError(f"unknown app(s): {', '.join(unknown)} (known: {', '.join(sorted(found))}; "
                                "a folder of your own is given as a path, e.g. ./my-app)")
        found = {n: folders.get(n) or found[n] for n in names}
    manifests = [load_manifest(p, judge_model) for p in found.values()]
    return sorted(manifests, key=lambda m: (m.layer, m.name))
