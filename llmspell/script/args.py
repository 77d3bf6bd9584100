"""`ARGS` and `arg` (lua-api.md §1.9): set by the engine for every run of a script."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def parse_args(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split script tokens into `--key value` options and positional values."""
    if tokens and tokens[0] == "--":
        tokens = tokens[1:]
    named: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and len(tok) > 2:
            body = tok[2:]
            if "=" in body:
                key, value = body.split("=", 1)
                named[key] = value
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                named[body] = tokens[i + 1]
                i += 1
            else:
                named[body] = "true"
        else:
            positional.append(tok)
        i += 1
    return named, positional


def set_script_args(rt: ScriptRuntime, script: str, tokens: list[str]) -> None:
    """Set ARGS and arg for a run of `script` with the raw `tokens` after its path."""
    if tokens and tokens[0] == "--":
        tokens = tokens[1:]
    named, positional = parse_args(tokens)
    lua = rt.lua
    args: Any = lua.table()
    args[0] = script
    args["0"] = script
    for k, v in named.items():
        args[k] = v
    for i, v in enumerate(positional, 1):
        args[i] = v
        args[str(i)] = v
    arg: Any = lua.table()
    arg[0] = script
    arg[-1] = "llmspell"
    for i, v in enumerate(tokens, 1):
        arg[i] = v
    rt.G.ARGS = args
    rt.G.arg = arg
