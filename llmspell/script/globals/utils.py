"""`Utils` global (lua-api.md §15): ids, time, strings, tables, hashing, encodings, template filling."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from llmspell.script.bridge import ConversionError, LuaApiError, lua_bytes, lua_file, lua_type, type_name
from llmspell.script.placeholders import mapping_resolver, render

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

_HASHES = ("md5", "sha1", "sha256", "sha512")

# Table and string helpers that are natural in Lua (exact bytes, metatables, any key types).
_LUA_HELPERS = lua_file(__file__, "utils.lua")


def install(rt: ScriptRuntime) -> None:
    """Create the Utils table on the runtime."""
    b = rt.bridge
    T = b.table()
    helpers = b.lua.execute(_LUA_HELPERS, b.m.mark_array, b.m.tags, b.m.key_less)

    def need_str(fname: str, v: Any, argn: int = 1) -> str:
        if not isinstance(v, str):
            raise LuaApiError(f"Utils.{fname}: argument #{argn} must be a string, got {type_name(v)}")
        return v

    def sleep(ms: Any = None) -> None:
        if isinstance(ms, bool) or not isinstance(ms, int | float):
            raise LuaApiError(f"Utils.sleep: ms must be a number, got {type_name(ms)}")
        if ms > 0:
            rt.sleep(ms / 1000.0)

    def hash_(s: Any = None, algo: Any = "sha256") -> str:
        data = lua_bytes(need_str("hash", s))
        name = "sha256" if algo is None else str(algo).lower().replace("-", "")
        if name not in _HASHES:
            raise LuaApiError(f"Utils.hash: unknown algorithm '{algo}' (use md5, sha1, sha256 or sha512)")
        return hashlib.new(name, data).hexdigest()

    def b64_decode(s: Any = None) -> bytes:
        text = need_str("base64_decode", s).strip()
        try:
            if "-" in text or "_" in text:
                return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise LuaApiError("Utils.base64_decode: input is not valid base64") from None

    def render_(template: Any = None, variables: Any = None) -> str:
        text = need_str("render", template)
        if variables is None:
            values: dict[str, Any] = {}
        elif lua_type(variables) == "table":
            try:
                conv = b.to_py(variables)
            except ConversionError as e:
                raise LuaApiError(f"Utils.render: {e.message}") from None
            values = conv if isinstance(conv, dict) else {str(i): v for i, v in enumerate(conv, 1)}
        else:
            raise LuaApiError(f"Utils.render: vars must be a table, got {type_name(variables)}")
        return render(text, mapping_resolver(values))

    b.set_functions(T, {
        "uuid": lambda: str(uuid.uuid4()),
        "now": time.time,
        "now_ms": lambda: time.time_ns() // 1_000_000,
        "timestamp": lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sleep": sleep,
        "hash": hash_,
        "base64_encode": lambda s=None: base64.b64encode(lua_bytes(need_str("base64_encode", s))).decode("ascii"),
        "base64_decode": b64_decode,
        "url_encode": lambda s=None: quote_from_bytes(lua_bytes(need_str("url_encode", s)), safe="-_.~"),
        "url_decode": lambda s=None: unquote_to_bytes(need_str("url_decode", s)),
        "render": render_,
    }, "Utils")
    wrap = b.lua.eval("function(f, T) return function(a, ...) if rawequal(a, T) then return f(...) end "
                      "return f(a, ...) end end")
    for name in ("split", "trim", "starts_with", "ends_with", "keys", "values", "len", "is_empty",
                 "deep_copy", "merge"):
        T[name] = wrap(helpers[name], T)
    rt.G.Utils = T
