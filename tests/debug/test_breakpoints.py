"""The breakpoint table without Lua: line moves, ids kept across updates, hit conditions, function names."""

from __future__ import annotations

from llmspell.debug.breakpoints import BreakpointTable, FunctionBreakpoint, SourceBreakpoint, hit_matches

TEXT = "local a = 1\n\n-- comment\nlocal b = 2\nreturn a + b\n"


def _compiles(cond: str) -> str | None:
    return None if cond != "bad" else "syntax error"


def test_lines_without_code_move_and_ids_survive_an_update() -> None:
    table = BreakpointTable()
    first = table.set_source("k", "/x.lua", [SourceBreakpoint(2), SourceBreakpoint(9)], TEXT, None, _compiles)
    assert (first[0].verified, first[0].line) == (True, 4)
    assert not first[1].verified and "no code" in (first[1].message or "")
    first[0].hits = 3
    again = table.set_source("k", "/x.lua", [SourceBreakpoint(2), SourceBreakpoint(5)], TEXT, None, _compiles)
    assert again[0].id == first[0].id and again[0].hits == 3 and again[1].id not in (first[0].id, first[1].id)
    assert sorted(table.by_source["k"]) == [4, 5] and table.at("k", 4) == [again[0]]
    assert table.set_source("k", "/x.lua", [], TEXT, None, _compiles) == [] and "k" not in table.by_source


def test_unreadable_source_keeps_unverified_breakpoints_and_bad_conditions_are_refused() -> None:
    table = BreakpointTable()
    kept = table.set_source("gone", "gone.lua", [SourceBreakpoint(3)], None, None, _compiles)
    assert not kept[0].verified and table.at("gone", 3) == kept
    bad = table.set_source("k", "/x.lua", [SourceBreakpoint(1, condition="bad"),
                                          SourceBreakpoint(4, hit_condition="often")], TEXT, {1, 4, 5}, _compiles)
    assert "does not compile" in (bad[0].message or "") and "not a count" in (bad[1].message or "")
    assert "k" not in table.by_source


def test_function_breakpoints_match_the_last_name_part() -> None:
    table = BreakpointTable()
    out = table.set_functions([FunctionBreakpoint("obj:method"), FunctionBreakpoint("1x")], _compiles)
    assert out[0].verified and not out[1].verified and list(table.functions) == ["method"]


def test_hit_conditions() -> None:
    assert hit_matches("3", 3) and not hit_matches("3", 4)
    assert hit_matches(">=2", 2) and hit_matches("%2", 4) and not hit_matches("%2", 3) and not hit_matches("%0", 0)
