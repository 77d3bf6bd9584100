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

from llmspell.script.bridge import ConversionError, LuaApiError, lua_bytes, lua_type, type_name
from llmspell.script.placeholders import mapping_resolver, render

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

_HASHES = ("md5", "sha1", "sha256", "sha512")

# Table and string helpers that are natural in Lua (exact bytes, metatables, any key types).
_LUA_HELPERS = r"""
local mark, tags, key_less = ...
local type, pairs, next, tostring, setmetatable, getmetatable, rawequal =
  type, pairs, next, tostring, setmetatable, getmetatable, rawequal
local sfind, ssub, smatch, sort = string.find, string.sub, string.match, table.sort
local H = {}

local function need(fname, v, want, argn)
  if type(v) ~= want then
    error(string.format("Utils.%s: argument #%d must be a %s, got %s", fname, argn, want, type(v)), 3)
  end
end

function H.split(s, sep, plain)
  need("split", s, "string", 1)
  local out = mark({})
  if sep == nil then
    for w in s:gmatch("%S+") do out[#out + 1] = w end
    return out
  end
  need("split", sep, "string", 2)
  if sep == "" then error("Utils.split: separator must not be empty (omit it to split on whitespace)", 2) end
  if plain == nil then plain = true end
  local init = 1
  while true do
    local a, b = sfind(s, sep, init, plain)
    if not a or b < a then break end
    out[#out + 1] = ssub(s, init, a - 1)
    init = b + 1
  end
  out[#out + 1] = ssub(s, init)
  return out
end

function H.trim(s) need("trim", s, "string", 1) return (smatch(s, "^%s*(.-)%s*$")) end
function H.starts_with(s, p)
  need("starts_with", s, "string", 1) need("starts_with", p, "string", 2)
  return ssub(s, 1, #p) == p
end
function H.ends_with(s, p)
  need("ends_with", s, "string", 1) need("ends_with", p, "string", 2)
  return p == "" or ssub(s, -#p) == p
end


local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  sort(ks, key_less)
  return ks
end

function H.keys(t) need("keys", t, "table", 1) return mark(sorted_keys(t)) end
function H.values(t)
  need("values", t, "table", 1)
  local out = mark({})
  for i, k in ipairs(sorted_keys(t)) do out[i] = t[k] end
  return out
end
function H.len(t)
  need("len", t, "table", 1)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end
function H.is_empty(t)
  if t == nil then return true end
  if type(t) == "string" then return t == "" end
  need("is_empty", t, "table", 1)
  return next(t) == nil
end

local function copy(v, seen)
  if type(v) ~= "table" then return v end
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[copy(k, seen)] = copy(x, seen) end
  if tags[v] == "array" then tags[out] = "array" end
  local mt = getmetatable(v)
  if type(mt) == "table" then setmetatable(out, mt) end
  return out
end
function H.deep_copy(v) return copy(v, {}) end

function H.merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t ~= nil then
      if type(t) ~= "table" then
        error(string.format("Utils.merge: argument #%d must be a table, got %s", i, type(t)), 2)
      end
      for k, v in pairs(t) do out[k] = v end
    end
  end
  return out
end

return H
"""


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
