"""Code lines read from Lua 5.4 bytecode line info."""

from __future__ import annotations

from llmspell.debug.lines import code_lines

SRC = """\
local function square(x)
  local y = x * x
  return y
end

-- a comment
local t = {
  a = 1,
}
if t.a then
  print('a')
else
  print('b')
end
local s = [[
long]]
return s
"""


def test_code_lines_cover_nested_functions_and_skip_non_code() -> None:
    lines = code_lines(SRC)
    assert lines is not None
    assert {2, 3, 4, 7, 8, 10, 11, 13, 16, 17} <= lines
    assert not lines & {1, 5, 6, 9, 12, 14, 15}


def test_syntax_error_gives_none() -> None:
    assert code_lines("local = 1") is None


def test_big_chunks_with_absolute_line_info() -> None:
    src = "local x = 0\n" + "\n" * 300 + "x = x + 1\n" + "".join(f"x = x + {i}\n" for i in range(500))
    lines = code_lines(src)
    assert lines is not None and 1 in lines and 302 in lines and 802 in lines and 150 not in lines
