"""pyproject.toml declares every third-party import of llmspell/ and harness/ where it is used.

The import walk reads the sources with ast (nothing is imported): each import of a package that is
neither the standard library nor our own must be declared in the core dependencies, or in the
extra that owns the importing module (llmspell/rag -> rag, harness -> harness, ...).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Our own packages; `benchmarks` is the checkout's (harness/report.py reads it when present).
OWN = {"llmspell", "harness", "llmspell_harness", "benchmarks"}

#: Module path prefix -> the extra whose dependencies that code may import (besides the core).
EXTRA_OF = {
    "llmspell/rag/": "rag",
    "llmspell/state/postgres.py": "postgres",
    "llmspell/runtime/tracing.py": "otel",
    "harness/": "harness",
}

#: Modules that only their host package loads (through its entry point group): the host is present.
HOSTED_BY = {"llmspell/kernel/papermill_lua.py": {"papermill"}}

#: Import names of optional packages that need not be installed in the test environment.
NOT_INSTALLED = {"opentelemetry": ["opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"],
                 "psycopg": ["psycopg"], "faiss": ["faiss-cpu"]}


def _norm(name: str) -> str:
    """A distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings; `llmspell[a,b]` expands to the extras a and b."""
    out: set[str] = set()
    for req in requirements:
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[([^\]]*)\])?", req)
        assert m, f"unparsable requirement {req!r}"
        name = _norm(m.group(1))
        if name == "llmspell":
            for extra in (m.group(3) or "").split(","):
                out |= _names(PYPROJECT["project"]["optional-dependencies"][extra.strip()])
        else:
            out.add(name)
    return out


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {n for n in found if n not in sys.stdlib_module_names and n not in OWN and n != "__future__"}


@functools.cache
def _installed() -> dict[str, list[str]]:
    """Import name -> distributions, from the installed metadata (read once)."""
    return dict(packages_distributions())


@functools.cache
def _distributions(module: str) -> list[str]:
    """The distributions that provide an import name (installed metadata, else NOT_INSTALLED)."""
    dists = _installed().get(module) or NOT_INSTALLED.get(module)
    assert dists, f"cannot tell which distribution provides {module!r}: install it or add it to NOT_INSTALLED"
    return [_norm(d) for d in dists]


def _allowed(rel: str) -> set[str]:
    """Distributions a file may import: the core, plus the extra that owns it."""
    allowed = _names(PYPROJECT["project"]["dependencies"])
    for prefix, extra in EXTRA_OF.items():
        if rel.startswith(prefix):
            allowed |= _names(PYPROJECT["project"]["optional-dependencies"][extra])
    return allowed | HOSTED_BY.get(rel, set())


SOURCES = sorted(p for d in ("llmspell", "harness") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_import_is_declared_where_it_is_used(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    allowed = _allowed(rel)
    missing = {m: _distributions(m) for m in _imports(path) if not set(_distributions(m)) & allowed}
    assert not missing, f"{rel} imports {missing} but pyproject.toml declares none of them for it"


def test_core_declares_nothing_unused() -> None:
    """Every core dependency is imported somewhere in llmspell/ (nothing like rich rides along)."""
    used: set[str] = set()
    for path in SOURCES:
        if path.relative_to(ROOT).as_posix().startswith("llmspell/"):
            for m in _imports(path):
                used |= set(_distributions(m))
    unused = _names(PYPROJECT["project"]["dependencies"]) - used
    assert not unused, f"core dependencies imported nowhere in llmspell/: {sorted(unused)}"


def test_hosted_modules_are_named_by_their_hosts_entry_points() -> None:
    """A HOSTED_BY exemption holds only while the host really loads that module through an entry point."""
    groups = PYPROJECT["project"].get("entry-points", {})
    for rel, hosts in HOSTED_BY.items():
        module = rel.removesuffix(".py").replace("/", ".")
        for host in hosts:
            targets = [v.split(":")[0] for g, eps in groups.items() if g.split(".")[0] == host for v in eps.values()]
            assert module in targets, f"{rel} is exempt for {host}, but no {host}.* entry point names it"


def test_core_leaves_out_the_heavy_and_the_test_only() -> None:
    core = _names(PYPROJECT["project"]["dependencies"])
    for name in ("pytest", "pytest-xdist", "pytest-html", "pytest-timeout", "respx", "rich", "numpy", "hnswlib",
                 "tokenizers", "safetensors", "torch"):
        assert name not in core, f"{name} is a core dependency"


def test_the_walk_sees_a_missing_declaration(tmp_path: Path) -> None:
    """The check itself can fail: a module importing an undeclared package is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import json\nimport orjson\nfrom pytest import fixture\nfrom . import x\n", encoding="utf-8")
    assert _imports(bad) == {"orjson", "pytest"}
    assert "pytest" not in _allowed("llmspell/cli/main.py")
    assert "pytest" in _allowed("harness/plugin.py") and "numpy" in _allowed("llmspell/rag/index.py")


def test_a_missing_optional_package_names_its_extra() -> None:
    from llmspell.resources import extra_for_module, missing_extra_message

    reqs = ['numpy>=1.26; extra == "rag"', 'pytest-benchmark>=4; extra == "bench"', 'pytest>=8; extra == "harness"',
            'pytest>=8; extra == "test"', 'faiss-cpu>=1.8; extra == "rag"', "lupa>=2.4"]
    assert [extra_for_module(m, reqs) for m in ("numpy", "pytest", "faiss", "lupa", "nope")] == \
        ["rag", "harness", "rag", None, None]
    for module, extra in (("numpy", "rag"), ("pytest", "harness"), ("psycopg", "postgres")):
        if extra in PYPROJECT["project"]["optional-dependencies"]:
            assert extra_for_module(module, [f'{module}>=1; extra == "{extra}"']) == extra
    assert "reinstall llmspell" in missing_extra_message(ModuleNotFoundError("x", name="surely_not_a_dep"))


def test_the_wheel_carries_apps_cassettes_data_and_the_renamed_harness(tmp_path: Path) -> None:
    """What `pip install .` installs: apps and cassettes inside llmspell, the harness as llmspell_harness."""
    import zipfile

    from hatchling.builders.wheel import WheelBuilder

    wheel = Path(next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])))
    names = set(zipfile.ZipFile(wheel).namelist())
    for app in (ROOT / "apps").glob("*/app.toml"):
        assert f"llmspell/_apps/{app.parent.name}/app.toml" in names
        assert f"llmspell/_apps/{app.parent.name}/main.lua" in names
    for cassette in (ROOT / "cassettes").glob("*/cassette.yaml"):
        assert f"llmspell/_cassettes/{cassette.parent.name}/cassette.yaml" in names
    for required in ("llmspell_harness/__init__.py", "llmspell_harness/__main__.py", "llmspell_harness/plugin.py",
                     "llmspell/script/lua_api.toml", "llmspell/providers/prices.json", "llmspell/script/prelude.lua",
                     "llmspell/script/shell.lua"):
        assert required in names
    assert not any(n.startswith(("harness/", "tests/", "benchmarks/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "llmspell-harness = llmspell.resources:harness_main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_resources_prefer_the_bundled_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmspell import resources

    monkeypatch.delenv("LLMSPELL_APPS_DIR", raising=False)
    monkeypatch.delenv("LLMSPELL_CASSETTES_DIR", raising=False)
    assert resources.apps_dir() == ROOT / "apps" and resources.cassettes_dir() == ROOT / "cassettes"  # checkout
    (tmp_path / "_apps").mkdir()
    (tmp_path / "_cassettes").mkdir()
    monkeypatch.setattr(resources, "PACKAGE_DIR", tmp_path)
    assert resources.apps_dir() == tmp_path / "_apps" and resources.cassettes_dir() == tmp_path / "_cassettes"
    monkeypatch.setenv("LLMSPELL_APPS_DIR", str(tmp_path / "mine"))
    assert resources.apps_dir() == tmp_path / "mine"


def test_the_harness_imports_itself_relatively() -> None:
    """The wheel installs harness/ as llmspell_harness: an absolute `harness.` import would break there."""
    for path in sorted((ROOT / "harness").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] != "harness", f"{path.name}: from {node.module} import ..."
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "harness" for a in node.names), f"{path.name}: import harness"
