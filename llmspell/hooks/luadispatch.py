"""LuaDispatch: the Lua side of the hook registry, built so that firing a point is one cheap call.

Each point's Lua hooks live in a Lua array and one call from Python runs the whole chain. No Python
object crosses into Lua per call: the data of a call is held here under an integer ticket, and the
ctx table loads `data`, `component_id` and `correlation_id` from it on first access (a no-op hook
never pays for them). The ctx is finalizable: when Lua collects it (or once `pairs` has loaded
every field) it reports that the ticket's data can be dropped.
"""

from __future__ import annotations

from typing import Any

from llmspell.script.bridge import lua_file

#: (data, component, correlation id): what one ctx table loads its lazy fields from.
Item = tuple[Any, tuple[str, str], Any]

# Drop the data of collected tickets every _DRAIN_EVERY tickets. Lua collects anchors at its own
# pace (as it would any userdata); past _HARD_CAP held tickets a drain first runs a full collection,
# and the cap doubles past what the script itself keeps alive.
_DRAIN_EVERY = 1024
_HARD_CAP = 65536

_LUA = lua_file(__file__, "luadispatch.lua")


class LuaDispatch:
    """Lua hook chains of one runtime and the calls that run them (Lua thread only)."""

    def __init__(self, rt: Any) -> None:
        m = rt.bridge.m
        self._to_lua = rt.bridge.to_lua
        self._held: dict[int, Item] = {}
        self._ticket = 0
        self._cap = _HARD_CAP
        self._index: dict[str, int] = {}
        self._set_chain, self.fire, self.fire_range, self._drain = rt.lua.execute(
            _LUA, m.raw_xpcall, self._fetch, m.errstring)

    def index(self, point: str) -> int:
        """The small integer that names a point on the Lua side."""
        i = self._index.get(point)
        if i is None:
            i = self._index[point] = len(self._index) + 1
        return i

    def set_chain(self, point: str, fns: list[Any]) -> int:
        """Replace the Lua array of `point` (placeholders where Python hooks sit); returns its index."""
        i = self.index(point)
        self._set_chain(i, point, *fns)
        return i

    def hold(self, item: Item) -> int:
        """Keep one call's data until Lua has collected every ctx built from it; its ticket."""
        self._ticket = t = self._ticket + 1
        if not t % _DRAIN_EVERY:
            self._collect(len(self._held) >= self._cap)
        self._held[t] = item
        return t

    @property
    def held(self) -> int:
        return len(self._held)

    def _collect(self, full: bool) -> None:
        held = self._held
        drain_full = full
        while True:
            dead = self._drain(drain_full)
            drain_full = False
            if dead is None:
                break
            for t in (dead,) if isinstance(dead, int) else dead:
                held.pop(t, None)
        if full:  # what a full collection left is kept by the script: do not collect again for it
            self._cap = max(_HARD_CAP, 2 * len(held))

    def _fetch(self, ticket: int, what: int) -> Any:
        data, component, corr = self._held[ticket]
        if what == 0:
            return self._to_lua(data if data is not None else {})
        if what == 1:
            return self._to_lua({"type": component[0], "name": component[1]})
        return corr
