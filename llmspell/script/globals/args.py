"""`ARGS` and `arg` before any script runs (empty); the engine sets them for each run (script/args.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmspell.script.args import set_script_args

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> None:
    set_script_args(rt, "", [])
