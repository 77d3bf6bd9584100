"""`Streaming` global (lua-api.md §17): a coroutine-backed Stream object with next/isDone/collect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmspell.script.bridge import lua_file

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

# Pure Lua: a Stream only resumes a coroutine, so there is nothing to gain from a Python round trip.
_STREAMING = lua_file(__file__, "streaming.lua")


def install(rt: ScriptRuntime) -> None:
    """Create the Streaming table on the runtime."""
    b = rt.bridge
    rt.G.Streaming = b.lua.execute(_STREAMING, b.m.mark_array, b.m.tags)
