"""The Lua API help: one source (lua_api.toml) for the Lua shell's help (`?name`, `.help NAME`) and docs/lua-api.md.

The llmspell globals are described in lua_api.toml (package data, read on first use); the few Lua
standard functions below come from the Lua 5.4 manual. `python -m llmspell.script.docs --write`
regenerates docs/lua-api.md from the same data, and `--check` fails when the page has drifted.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("lua_api.toml")
#: Where the generated reference lives in a checkout.
DEFAULT_PAGE = Path(__file__).resolve().parent.parent.parent / "docs" / "lua-api.md"
GENERATOR = "python -m llmspell.script.docs --write"


@dataclass(frozen=True)
class FunctionDoc:
    """One function of a global: how it is called, its arguments, its result and an example."""

    name: str
    sig: str
    args: tuple[str, ...]
    result: str
    example: str
    aliases: tuple[str, ...] = ()
    offline: bool = True

    def text(self) -> str:
        """The help shown for this function by inspect and the REPL."""
        lines = [self.sig, f"  {self.result}"]
        if self.aliases:
            lines.append(f"  Also: {', '.join(self.aliases)}")
        lines += [f"  - {a}" for a in self.args]
        lines += ["Example:", *(f"  {line}" for line in self.example.splitlines())]
        return "\n".join(lines)


@dataclass(frozen=True)
class GlobalDoc:
    """One Lua global: its summary, functions, non-function fields and instance methods."""

    name: str
    section: str
    summary: str
    functions: tuple[FunctionDoc, ...] = ()
    fields: tuple[str, ...] = ()
    methods: str = ""
    methods_example: str = ""
    methods_offline: bool = True
    variable: bool = False
    example: str = ""
    offline: bool = True

    def text(self) -> str:
        """The help shown for the global itself."""
        out = f"{self.name}: {self.summary} (docs/lua-api.md#{_anchor(self.name)})"
        if self.functions:
            out += "\nFunctions: " + ", ".join(f.name.split(".", 1)[1] for f in self.functions)
        return out


def _function(global_name: str, raw: dict[str, Any], offline: bool) -> FunctionDoc:
    sig = str(raw["sig"])
    name = sig.split("(", 1)[0].split("{", 1)[0].strip()
    if not name.startswith(global_name + "."):
        raise ValueError(f"{SOURCE.name}: {sig!r} is listed under {global_name}")
    return FunctionDoc(name=name, sig=sig, args=tuple(raw.get("args", ())), result=str(raw["result"]),
                       example=str(raw["example"]).strip("\n"), aliases=tuple(raw.get("aliases", ())),
                       offline=bool(raw.get("offline", offline)))


@functools.cache
def globals_doc() -> tuple[GlobalDoc, ...]:
    """Every documented global, in the order of the source (that of the specification)."""
    data = tomllib.loads(SOURCE.read_text(encoding="utf-8"))
    out = []
    for name, raw in data.items():
        offline = bool(raw.get("offline", True))
        methods = raw.get("methods", {})
        out.append(GlobalDoc(
            name=name, section=str(raw["section"]), summary=str(raw["summary"]),
            functions=tuple(_function(name, f, offline) for f in raw.get("fn", ())),
            fields=tuple(raw.get("fields", ())), methods=str(methods.get("text", "")),
            methods_example=str(methods.get("example", "")).strip("\n"),
            methods_offline=bool(methods.get("offline", True)), variable=bool(raw.get("variable", False)),
            example=str(raw.get("example", "")).strip("\n"), offline=offline))
    return tuple(out)


@functools.cache
def _index() -> dict[str, str]:
    """Dotted name (and alias) -> help text."""
    index: dict[str, str] = {}
    for g in globals_doc():
        index[g.name] = g.text()
        for f in g.functions:
            for name in (f.name, *f.aliases):
                index[name] = f.text()
    for name, text in LUA_STDLIB.items():
        index.setdefault(name, text)
    return index


def lookup(name: str) -> str | None:
    """The help text for a dotted name (colon calls use the dot form), or None."""
    return _index().get(name.replace(":", "."))


def names() -> list[str]:
    """Every name that has help, sorted."""
    return sorted(_index())


# ---------------------------------------------------------------------------------- the reference page
def _anchor(name: str) -> str:
    """The GitHub-style anchor of a '## Name' heading."""
    return name.lower()


def render_markdown() -> str:
    """docs/lua-api.md: one section per global, each function with signature, arguments, result, example."""
    gs = globals_doc()
    out = ["# Lua API reference", "",
           f"<!-- Generated from llmspell/script/lua_api.toml by `{GENERATOR}`; do not edit by hand. -->", "",
           "Every global a llmspell script sees, with each function's signature, arguments, result and an "
           "example. The same text answers `?Name` (inspect) in Jupyter and `.help Name` in `llmspell repl`. "
           "Objects use colon calls (`agent:execute{...}`), globals dot calls (`Agent.builder()`). "
           "The Lua 5.4 standard library is available as usual (see the Lua 5.4 reference manual).", "",
           "Differences from the reference implementation: where a script written for it behaves "
           "differently here, and why, is listed in [differences.md](differences.md).", "",
           "## Globals", ""]
    out += [f"- [{g.name}](#{_anchor(g.name)}): {g.summary.split('. ')[0].rstrip('.')}." for g in gs]
    for g in gs:
        out += ["", f"## {g.name}", "", g.summary, ""]
        if g.variable:
            out += ["```lua", g.example, "```"]
            continue
        for fld in g.fields:
            out.append(f"- `{fld.split(':', 1)[0]}`:{fld.split(':', 1)[1]}")
        if g.fields:
            out.append("")
        for f in g.functions:
            out += [f"### {f.name}", "", "```", f.sig, "```", ""]
            if f.aliases:
                out += ["Also available as " + ", ".join(f"`{a}`" for a in f.aliases) + ".", ""]
            out += ["Arguments:" if f.args else "Arguments: none.", ""]
            if f.args:
                for a in f.args:
                    arg, _, meaning = a.partition(":")
                    out.append(f"- `{arg.strip()}`:{meaning}")
                out.append("")
            out += [f"Result: {f.result}", "", "```lua", f.example, "```", ""]
        if g.methods:
            out += [f"### {g.name} objects", "", g.methods, ""]
            if g.methods_example:
                out += ["```lua", g.methods_example, "```", ""]
        while out and out[-1] == "":
            out.pop()
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m llmspell.script.docs [--write | --check] [--output PATH]`."""
    p = argparse.ArgumentParser(prog="python -m llmspell.script.docs",
                                description="Generate the Lua API reference (docs/lua-api.md) from lua_api.toml.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the page")
    mode.add_argument("--check", action="store_true", help="exit 1 when the page differs from the source")
    p.add_argument("--output", type=Path, default=DEFAULT_PAGE, help=f"the page (default: {DEFAULT_PAGE})")
    args = p.parse_args(argv)
    text = render_markdown()
    if args.write:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
        return 0
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run {GENERATOR}\n")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


KEYWORDS: tuple[str, ...] = (
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
)

#: Short help for common Lua 5.4 standard functions (from the Lua 5.4 reference manual).
LUA_STDLIB: dict[str, str] = {
    "print": "print(...): writes its arguments, rendered and separated by tabs, then a newline, to stdout.",
    "io.write": "io.write(...): writes strings and numbers to stdout with no separator; returns io.stdout.",
    "io.read": "io.read(fmt?): reads a line; in the kernel it asks the frontend (input_request).",
    "pairs": "pairs(t): iterator over all key/value pairs of t (honours __pairs).",
    "ipairs": "ipairs(t): iterator over t[1], t[2], ... up to the first nil.",
    "type": "type(v) -> 'nil', 'number', 'string', 'boolean', 'table', 'function', 'thread' or 'userdata'.",
    "tostring": "tostring(v) -> string (honours __tostring and __name).",
    "tonumber": "tonumber(v, base?) -> number or nil.",
    "pcall": "pcall(f, ...) -> true, results... or false, error.",
    "xpcall": "xpcall(f, handler, ...) -> like pcall, calling handler(err) on error.",
    "error": "error(message, level?): raises an error.",
    "assert": "assert(v, message?): raises message when v is false or nil; returns its arguments.",
    "require": "require(name): loads a module through package.path.",
    "select": "select(n, ...) -> arguments from n on; select('#', ...) -> their count.",
    "setmetatable": "setmetatable(t, mt) -> t.",
    "getmetatable": "getmetatable(v) -> metatable or its __metatable field.",
    "next": "next(t, k?) -> next key/value pair of t.",
    "rawget": "rawget(t, k) -> t[k] without metamethods.",
    "rawset": "rawset(t, k, v) -> t, without metamethods.",
    "load": "load(chunk, name?, mode?, env?) -> function or nil, error.",
    "string.format": "string.format(fmt, ...) -> formatted string (printf-style).",
    "string.sub": "string.sub(s, i, j?) -> substring.",
    "string.find": "string.find(s, pattern, init?, plain?) -> start, end, captures...",
    "string.gsub": "string.gsub(s, pattern, repl, n?) -> string, count.",
    "string.match": "string.match(s, pattern, init?) -> captures.",
    "string.gmatch": "string.gmatch(s, pattern) -> iterator over matches.",
    "string.rep": "string.rep(s, n, sep?) -> s repeated n times.",
    "string.upper": "string.upper(s) -> upper-case copy.",
    "string.lower": "string.lower(s) -> lower-case copy.",
    "string.len": "string.len(s) -> length in bytes.",
    "table.insert": "table.insert(t, [pos,] v): inserts v at pos (default: the end).",
    "table.remove": "table.remove(t, pos?) -> removed element.",
    "table.concat": "table.concat(t, sep?, i?, j?) -> string.",
    "table.sort": "table.sort(t, comp?): sorts in place.",
    "table.unpack": "table.unpack(t, i?, j?) -> t[i], ..., t[j].",
    "math.floor": "math.floor(x) -> largest integral value <= x.",
    "math.max": "math.max(x, ...) -> maximum.",
    "math.min": "math.min(x, ...) -> minimum.",
    "math.random": "math.random(m?, n?) -> pseudo-random number.",
    "os.time": "os.time(t?) -> epoch seconds.",
    "os.clock": "os.clock() -> CPU seconds used.",
    "os.exit": "os.exit(code?): in the kernel, aborts the cell with the error 'os.exit(<code>) called'.",
    "coroutine.create": "coroutine.create(f) -> thread.",
    "coroutine.resume": "coroutine.resume(co, ...) -> true, values... or false, error.",
    "coroutine.wrap": "coroutine.wrap(f) -> function resuming the coroutine on each call.",
    "coroutine.yield": "coroutine.yield(...): suspends the running coroutine.",
}


if __name__ == "__main__":
    raise SystemExit(main())
