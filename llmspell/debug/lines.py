"""Which lines of a Lua source hold code: read from the line info of its compiled bytecode.

The source is compiled in the engine's private Lua state (never the script's, so this works while a
script runs) and `string.dump` output (Lua 5.4 format) is walked for every function prototype.
"""

from __future__ import annotations

from llmspell.script.bridge import dump_bytecode

_ABSLINEINFO = -0x80


class _Reader:
    """Cursor over a Lua 5.4 binary chunk."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def skip(self, n: int) -> None:
        self.pos += n

    def size(self) -> int:
        x = 0
        while True:
            b = self.byte()
            x = (x << 7) | (b & 0x7F)
            if b & 0x80:
                return x

    def string(self) -> None:
        n = self.size()
        if n:
            self.skip(n - 1)


def _function(r: _Reader, lines: set[int]) -> None:
    r.string()  # source
    linedefined = r.size()
    r.size()  # lastlinedefined
    r.byte()  # numparams
    is_vararg = r.byte()
    r.byte()  # maxstacksize
    ncode = r.size()
    r.skip(4 * ncode)
    for _ in range(r.size()):  # constants
        t = r.byte()
        if t in (3, 19):  # integer, float
            r.skip(8)
        elif t in (4, 20):  # short, long string
            r.string()
    r.skip(3 * r.size())  # upvalues: instack, idx, kind
    for _ in range(r.size()):  # nested prototypes
        _function(r, lines)
    nline = r.size()
    deltas = [int.from_bytes(bytes([r.byte()]), "big", signed=True) for _ in range(nline)]
    absinfo = {}
    for _ in range(r.size()):
        pc = r.size()
        absinfo[pc] = r.size()
    line = linedefined
    for pc, d in enumerate(deltas):
        line = absinfo.get(pc, line) if d == _ABSLINEINFO else line + d
        if pc or not is_vararg:  # like Lua's activelines: VARARGPREP never reports a line
            lines.add(line)
    for _ in range(r.size()):  # local variables
        r.string()
        r.size()
        r.size()
    for _ in range(r.size()):  # upvalue names
        r.string()


def code_lines(source: str) -> set[int] | None:
    """Lines with at least one instruction (any function in the chunk); None if it does not compile."""
    dump = dump_bytecode(source)
    if dump is None:
        return None
    r = _Reader(dump)
    r.skip(4 + 1 + 1 + 6 + 3 + 8 + 8)  # signature, version, format, LUAC_DATA, sizes, LUAC_INT, LUAC_NUM
    r.byte()  # number of upvalues of the main closure
    lines: set[int] = set()
    try:
        _function(r, lines)
    except IndexError:
        return None
    return lines
