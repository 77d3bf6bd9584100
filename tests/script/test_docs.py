"""The Lua API help source (lua_api.toml): complete against the runtime, examples that run, and a page in sync.

docs/lua-api.md is generated from the same source that answers `?name` in the kernel and
`.help NAME` in the REPL; these tests fail when the page drifts, when a global gains or loses a
function the source does not list, or when an example stops running.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from llmspell.script import docs

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "lua-api.md"

LIST_MEMBERS = """
local out = {}
for k, v in pairs(_G[...]) do out[#out + 1] = tostring(k) .. "=" .. type(v) end
return table.concat(out, " ")
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One runtime with every global (RAG enabled) and state in a temp dir, shared by the module."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    tmp = tmp_path_factory.mktemp("docs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    env.update(LLMSPELL_STATE_PATH=str(tmp / "state.sqlite3"), LLMSPELL_RAG_ENABLED="1", HOME=str(tmp))
    rt = create_runtime(load_config(env=env), stdout=BufferSink(), stderr=BufferSink())
    yield rt
    rt.close()


def test_the_page_matches_the_source() -> None:
    assert PAGE.read_text(encoding="utf-8") == docs.render_markdown(), \
        f"docs/lua-api.md is out of date: run {docs.GENERATOR}"


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "lua-api.md"
    page.write_text(docs.render_markdown() + "edited by hand\n", encoding="utf-8")
    assert docs.main(["--check", "--output", str(page)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docs.main(["--write", "--output", str(page)]) == 0
    assert docs.main(["--check", "--output", str(page)]) == 0


def test_every_entry_has_signature_arguments_result_and_example() -> None:
    for g in docs.globals_doc():
        assert g.summary and (g.functions or g.variable), g.name
        for f in g.functions:
            assert f.sig.startswith(f.name) and f.result and f.example, f.name
            assert f.args or "()" in f.sig, f"{f.name} takes arguments but lists none"


@pytest.mark.parametrize("global_name", [g.name for g in docs.globals_doc() if not g.variable])
def test_the_source_lists_exactly_the_runtime_functions(runtime: Any, global_name: str) -> None:
    members = dict(m.split("=", 1) for m in str(runtime.run_string(f"return (function(...) {LIST_MEMBERS} end)"
                                                                  f"('{global_name}')").values[0]).split())
    functions = {f"{global_name}.{k}" for k, kind in members.items() if kind == "function"}
    g = next(g for g in docs.globals_doc() if g.name == global_name)
    documented = {n for f in g.functions for n in (f.name, *f.aliases)}
    assert functions - documented == set(), f"undocumented functions of {global_name}"
    assert documented - functions == set(), f"documented functions {global_name} does not have"
    fields = {f"{global_name}.{k}" for k, kind in members.items() if kind != "function"}
    assert fields == {fld.split(":", 1)[0] for fld in g.fields}, f"fields of {global_name}"


EXAMPLES = [(f.name, f.example) for g in docs.globals_doc() for f in g.functions if f.offline]
EXAMPLES += [(f"{g.name} objects", g.methods_example) for g in docs.globals_doc()
             if g.methods_example and g.methods_offline]
EXAMPLES += [(g.name, g.example) for g in docs.globals_doc() if g.variable]


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_the_example_runs(runtime: Any, name: str, example: str) -> None:
    """Each example runs; one that shows its output (`--> value`) prints exactly that."""
    sink = runtime.stdout
    before = len(sink.text)
    runtime.run_string("do\n" + example + "\nend", f"=example {name}")
    printed = sink.text[before:].splitlines()
    shown = [line.split("-->", 1)[1].split("(")[0].split() for line in example.splitlines() if "-->" in line]
    if len(shown) == 1 and len(printed) == 1:
        assert printed[0].split() == shown[0], f"{name} prints {printed[0]!r}, the example shows {shown[0]}"


def test_lookup_serves_functions_aliases_colon_calls_and_globals() -> None:
    assert "Tool.invoke(name, params)" in (docs.lookup("Tool.invoke") or "")
    assert docs.lookup("Tool.execute") == docs.lookup("Tool.invoke")
    assert "AgentBuilder" in (docs.lookup("Agent:builder") or "")
    assert "Example:" in (docs.lookup("JSON.parse") or "")
    assert (docs.lookup("State") or "").startswith("State: ")
    assert docs.lookup("print") and docs.lookup("NoSuchGlobal.fn") is None


def test_the_source_points_nowhere_outside_the_repository() -> None:
    text = docs.SOURCE.read_text(encoding="utf-8") + docs.render_markdown()
    for outside in ("../shared", "/work/", "lua-api §", "specification §"):
        assert outside not in text
