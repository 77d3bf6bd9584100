"""Every .lua file the package ships compiles (Lua lives in .lua files, checked here, not at first use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmspell.script.bridge import dump_bytecode

PACKAGE = Path(__file__).resolve().parents[2] / "llmspell"
LUA_FILES = sorted(PACKAGE.rglob("*.lua"))


def test_the_package_ships_lua_files() -> None:
    assert len(LUA_FILES) >= 8, LUA_FILES


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lua_file_compiles(path: Path) -> None:
    assert dump_bytecode(path.read_text(encoding="utf-8")) is not None, f"{path} does not compile"


def test_a_syntax_error_is_caught() -> None:
    assert dump_bytecode("local x = = 1") is None
