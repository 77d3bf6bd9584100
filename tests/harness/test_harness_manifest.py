"""app.toml parsing, validation errors and discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import APPS_DIR
from harness.manifest import ManifestError, discover, group_for, load_manifest, parse_manifest

GOOD = """
[app]
name = "demo"
layer = 2
agents = 5
rag = true
args = ["--topic", "x"]

[expect]
files = ["out.md", "sub/*.txt"]
output = ["== done =="]
min_files = 3

[budget]
runtime_seconds = 30
cost_usd = 0.5
"""

#: The table of issue 9: app -> (layer, agents, uses RAG).
ISSUE_TABLE = {
    "file-organizer": (1, 3, False), "research-collector": (2, 2, True), "content-creator": (3, 4, False),
    "personal-assistant": (3, 4, True), "communication-manager": (4, 5, False), "knowledge-base": (4, 3, True),
    "code-review-assistant": (5, 7, False), "process-orchestrator": (5, 8, False), "webapp-creator": (6, 20, False),
}


def _app(tmp_path: Path, text: str, name: str = "demo", main: bool = True, config: bool = True) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "app.toml").write_text(text)
    if main:
        (d / "main.lua").write_text("print('== done ==')\n")
    if config:
        (d / "config.toml").write_text("")
    return d / "app.toml"


def test_parses_every_field(tmp_path: Path) -> None:
    m = load_manifest(_app(tmp_path, GOOD))
    assert (m.name, m.layer, m.agents, m.rag, m.group) == ("demo", 2, 5, True, "complex")
    assert m.files == ("out.md", "sub/*.txt") and m.output == ("== done ==",) and m.min_files == 3
    assert (m.runtime_seconds, m.cost_usd, m.args) == (30.0, 0.5, ("--topic", "x"))
    assert m.main_lua == tmp_path / "demo" / "main.lua"


@pytest.mark.parametrize("edit, message", [
    (("layer = 2", "layer = 9"), "app.layer: expected an integer 1-6, got 9"),
    (("layer = 2", 'layer = "two"'), "app.layer: expected an integer 1-6, got str"),
    (("agents = 5", "agents = 0"), "app.agents: expected a positive integer"),
    (("agents = 5", "agents = true"), "app.agents: expected a positive integer, got a boolean"),
    (('"out.md"', '"/etc/passwd"'), "expect.files[0]: '/etc/passwd' must be relative"),
    (('"out.md"', '"../x"'), "must be relative to the output directory"),
    (('output = ["== done =="]', 'output = "== done =="'), "expect.output: expected an array of strings"),
    (("cost_usd = 0.5", "cost_usd = -1"), "budget.cost_usd: expected a non-negative number"),
    (("runtime_seconds = 30", "runtime_seconds = 0"), "budget.runtime_seconds: expected a positive number"),
    (("rag = true", "rag = true\ncolour = 1"), "app.colour: unknown key"),
    (("[budget]", "[budgets]"), "budgets: unknown section"),
    (('name = "demo"', 'name = "other"'), "app.name: 'other' does not match its directory 'demo'"),
    (("runtime_seconds = 30\n", ""), "budget.runtime_seconds: required key is missing"),
    (("layer = 2", "layer = = 2"), "invalid TOML"),
])
def test_validation_errors_name_file_and_key(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = _app(tmp_path, GOOD.replace(*edit, 1))
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_missing_section_and_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"\[expect\]: missing section"):
        parse_manifest("[app]\nname='x'\nlayer=1\nagents=1\n[budget]\nruntime_seconds=1\ncost_usd=0\n", Path("x/app.toml"))
    with pytest.raises(ManifestError, match="has no main.lua"):
        load_manifest(_app(tmp_path, GOOD, main=False))
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "nope" / "app.toml")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="'config.toml' not found"):
        load_manifest(_app(tmp_path, GOOD, config=False))


def test_groups() -> None:
    assert [group_for(n) for n in (1, 4, 5, 8, 9, 20)] == ["simple", "simple", "complex", "complex", "expert", "expert"]


def test_discover_orders_by_layer_and_rejects_unknown_names(tmp_path: Path) -> None:
    _app(tmp_path, GOOD)
    _app(tmp_path, GOOD.replace('name = "demo"', 'name = "first"').replace("layer = 2", "layer = 1"), name="first")
    assert [m.name for m in discover(tmp_path)] == ["first", "demo"]
    assert [m.name for m in discover(tmp_path, ["demo"])] == ["demo"]
    with pytest.raises(ManifestError, match="unknown app.*nope.*known: demo, first"):
        discover(tmp_path, ["nope"])


def test_the_nine_apps_match_the_issue_table() -> None:
    apps = {m.name: m for m in discover(APPS_DIR)}
    assert set(apps) == set(ISSUE_TABLE)
    for name, (layer, agents, rag) in ISSUE_TABLE.items():
        m = apps[name]
        assert (m.layer, m.agents, m.rag) == (layer, agents, rag), name
        assert (m.directory / "README.md").is_file(), name
        assert m.output and m.files, name
    assert apps["webapp-creator"].min_files >= 30
