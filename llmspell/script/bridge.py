"""The Lua <-> Python bridge: value conversion (§1.8), API functions with Lua error semantics, objects.

Every Lua global is built from the pieces here, so the rules of lua-api.md §1.3, §1.7 and §1.8
live in exactly one place:

* `Bridge.function(fn, name)` turns a Python callable into a Lua function. `LuaApiError` raised by
  it becomes a Lua error *string* at the caller's line (so `pcall` gets a string, never a Python
  object); the Python return value is converted with `to_lua`.
* `Bridge.klass(...)` makes an object kind (Agent, Workflow, builders...) whose methods must be
  called with `:`, whose unknown fields raise, and whose `tostring` is readable.
* `Bridge.to_py` / `Bridge.to_lua` convert values by the one set of JSON rules.
"""

from __future__ import annotations

import codecs
import logging
import math
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lupa import lua54

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.script")

LuaError = lua54.LuaError

lua_type = lua54.lua_type

LUA_CODEC = "llmspell-utf8"


def _codec_search(name: str) -> codecs.CodecInfo | None:
    """A UTF-8 codec with surrogateescape both ways: Lua byte strings round-trip exactly."""
    if name.replace("_", "-") != LUA_CODEC:
        return None
    utf8 = codecs.lookup("utf-8")
    return codecs.CodecInfo(
        name=LUA_CODEC,
        encode=lambda s, errors="strict": codecs.utf_8_encode(s, "surrogateescape"),
        decode=lambda b, errors="strict": codecs.utf_8_decode(b, "surrogateescape", True),
        incrementalencoder=utf8.incrementalencoder,
        incrementaldecoder=utf8.incrementaldecoder,
        streamreader=utf8.streamreader,
        streamwriter=utf8.streamwriter,
    )


codecs.register(_codec_search)

def lua_file(module_file: str, name: str) -> str:
    """The text of a `.lua` file shipped as package data beside the Python module `module_file`."""
    return Path(module_file).with_name(name).read_text(encoding="utf-8")


PRELUDE = lua_file(__file__, "prelude.lua")
MAX_DEPTH = 1000

# to_py recurses three Python frames per nesting level; let it reach MAX_DEPTH before Python's limit.
if sys.getrecursionlimit() < 4 * MAX_DEPTH + 1000:
    sys.setrecursionlimit(4 * MAX_DEPTH + 1000)


class LuaApiError(Exception):
    """Misuse or failed work inside an API call; reaches Lua as an error string at the caller's line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConversionError(LuaApiError):
    """A Lua value that has no JSON form (a function, a cycle, an API object...)."""


class Interrupted(Exception):
    """Raised on the Lua thread when an interrupt or a timeout stops the script."""

    def __init__(self, reason: str = "interrupted") -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Multi:
    """Several return values for a Lua function."""

    values: tuple[Any, ...]


class _Null:
    """Python stand-in for JSON.null when a value must keep an explicit null."""

    _instance: _Null | None = None

    def __new__(cls) -> _Null:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "JSON.null"

    def __bool__(self) -> bool:
        return False


NULL = _Null()


def clean_text(s: str) -> str:
    """Replace the surrogate escapes of invalid UTF-8 bytes with U+FFFD (§1.8)."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def lua_bytes(s: str) -> bytes:
    """The exact bytes of a Lua string as seen from Python."""
    return s.encode("utf-8", "surrogateescape")


def _addr(t: Any) -> str:
    # lupa's repr is "<Lua table at 0x...>", the table's own address: cheap identity for cycles.
    return repr(t)


class LuaClass:
    """A Lua object kind: call `new(handle)` to get the Lua proxy of a Python object."""

    def __init__(self, kind: str, new: Any, handle_of: Any) -> None:
        self.kind = kind
        self._new = new
        self._handle_of = handle_of

    def new(self, handle: Any) -> Any:
        return self._new(handle)

    def handle_of(self, proxy: Any) -> Any:
        """The Python object behind a proxy, or None when `proxy` is not of this kind."""
        if lua_type(proxy) != "table":
            return None
        return self._handle_of(proxy)


class Bridge:
    """Conversion and wrapping helpers bound to one LuaRuntime."""

    def __init__(self, lua: Any, runtime: ScriptRuntime | None = None) -> None:
        self.lua = lua
        self.runtime = runtime
        self.m = lua.execute(PRELUDE)
        self._tags = self.m.tags
        self.null = lua.eval(
            'setmetatable({}, {__tostring = function() return "null" end, __name = "JSON.null",'
            ' __newindex = function() error("JSON.null is read-only", 2) end, __metatable = "JSON.null"})'
        )
        self._null_addr = _addr(self.null)
        self._table_from = lua.table_from
        self._new_table = lua.table
        self._identity = self.m.identity
        self._setmetatable = lua.globals().setmetatable

    # ----------------------------------------------------------------- functions
    def function(self, fn: Callable[..., Any], name: str, *, global_table: Any = None) -> Any:
        """Wrap `fn` as a Lua function with the §1.7 error model.

        With `global_table`, calling it as `Global:fn(...)` drops the leading global argument.
        """
        guarded = self.guard(fn, name)
        in_co = self.for_coroutines(guarded)
        if global_table is not None:
            return self.m.wrap_global(guarded, in_co, global_table)
        return self.m.wrap(guarded, in_co)

    def for_coroutines(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """`call` as Lua code inside a coroutine calls it: Lua arguments re-bound to the main state first.

        lupa binds a Lua value to the lua_State it arrived on, here the coroutine's, which is freed
        when the coroutine is collected (a value kept past that would crash). And while the main state
        sits in coroutine.resume, lupa misreads its stack for table reads made through the main state.
        One identity call through the main state fixes both: it empties the resume frame's slots (the
        prelude's resume wrapper keeps the coroutine referenced) and returns main-state values.
        """
        identity = self._identity

        def call_co(co: Any, *args: Any) -> Any:
            if args:  # with co first, identity gives a tuple for one argument too
                _, *rest = identity(co, *args)
                return call(*rest)
            identity(co)
            return call()

        return call_co

    def settle(self) -> None:
        """Make table reads through the main state safe from inside a coroutine (see for_coroutines)."""
        self._identity()

    def guard(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        """The Python side of a wrapped function: returns (ok, values...) instead of raising."""
        to_lua = self.to_lua
        runtime = self.runtime

        def call(*args: Any) -> Any:
            try:
                result = fn(*args)
            except LuaApiError as e:
                return (False, e.message)
            except Interrupted as e:
                return (False, e.reason)
            except LuaError as e:
                return (False, lua_error_message(e))
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except ModuleNotFoundError as e:  # an optional extra (rag, postgres, ...) is not installed
                from llmspell.resources import missing_extra_message

                log.debug("missing module in %s", name, exc_info=True)
                return (False, f"{name}: {missing_extra_message(e)}")
            except BaseException as e:  # noqa: BLE001 - Python errors never reach Lua as objects
                if getattr(e, "_llmspell_passthrough", False):
                    raise
                log.debug("internal error in %s", name, exc_info=True)
                return (False, f"{name}: internal error: {type(e).__name__}: {e}")
            stop = runtime.interrupted if runtime is not None else None
            if stop is not None:  # os.exit or an interrupt that Python code caught: the script stops here
                return (False, stop)
            if isinstance(result, Multi):
                return (True, *(to_lua(v) for v in result.values))
            return (True, to_lua(result))

        return call

    def table(self, *args: Any, **kwargs: Any) -> Any:
        return self._new_table(*args, **kwargs)

    def weak_table(self, mode: str = "v") -> Any:
        """A Lua table with weak values ("v": a proxy cache that must not pin them) or keys ("k": ephemerons)."""
        return self._setmetatable(self._new_table(), self._table_from({"__mode": mode}))

    def set_functions(self, table: Any, functions: Mapping[str, Callable[..., Any]], prefix: str) -> None:
        """Install API functions on a global table (callable with `.` or `:`)."""
        for name, fn in functions.items():
            table[name] = self.function(fn, f"{prefix}.{name}", global_table=table)

    def klass(
        self,
        kind: str,
        methods: Mapping[str, Callable[..., Any]],
        *,
        fields: Callable[[Any, str], tuple[bool, Any]] | None = None,
        tostring: Callable[[Any], str] | None = None,
        chain: Iterable[str] = (),
    ) -> LuaClass:
        """Define an object kind. Method callables take (handle, *lua_args)."""
        py_methods, py_methods_co = self._new_table(), self._new_table()
        for mname, fn in methods.items():
            guarded = self.guard(fn, f"{kind}:{mname}")
            py_methods[mname] = guarded
            py_methods_co[mname] = self.for_coroutines(guarded)
        chain_t = self._new_table()
        for c in chain:
            chain_t[c] = True
        to_lua = self.to_lua

        def getfield(handle: Any, key: Any) -> Any:
            if fields is None or handle is None or not isinstance(key, str):
                return (False, None)
            found, value = fields(handle, key)
            return (found, to_lua(value) if found else None)

        def tostr(handle: Any) -> str:
            if tostring is None:
                return f"{kind}()"
            return tostring(handle)

        new, handle_of = self.m["class"](kind, py_methods, py_methods_co, getfield, self.for_coroutines(getfield),
                                         tostr, chain_t)
        return LuaClass(kind, new, handle_of)

    # ----------------------------------------------------------------- conversion
    def is_table(self, v: Any) -> bool:
        return lua_type(v) == "table"

    def is_function(self, v: Any) -> bool:
        return lua_type(v) == "function"

    def tag(self, t: Any) -> str | None:
        """'array' for JSON.array tables, an object kind for API objects, else None."""
        return self._tags[t]

    def to_py(self, value: Any, *, keep_functions: bool = False, _depth: int = 0, _path: set[str] | None = None) -> Any:
        """Convert a Lua value to plain Python data by the §1.8 rules.

        Raises ConversionError for functions, userdata, API objects and cycles (unless
        `keep_functions`, which passes Lua functions through untouched).
        """
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        kind = lua_type(value)
        if kind == "table":
            return self._table_to_py(value, keep_functions, _depth, _path)
        if kind == "function" and keep_functions:
            return value
        if kind is None:
            if value is NULL:
                return None
            raise ConversionError(f"cannot convert {type(value).__name__} to JSON")
        raise ConversionError(f"cannot convert {kind} to JSON")

    def _table_to_py(self, t: Any, keep_functions: bool, depth: int, path: set[str] | None) -> Any:
        if depth >= MAX_DEPTH:
            raise ConversionError("cannot convert to JSON: nesting deeper than 1000")
        addr = _addr(t)
        if addr == self._null_addr:
            return None
        tag = self._tags[t]
        if tag is not None and tag != "array":
            raise ConversionError(f"cannot convert {tag} to JSON")
        if path is None:
            path = set()
        if addr in path:
            raise ConversionError("cannot convert to JSON: cycle detected")
        path.add(addr)
        try:
            items = list(t.items())
            n = len(items)
            int_keys = True
            for k, _ in items:
                if not (isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= n):
                    int_keys = False
                    break
            conv = self.to_py
            if (n >= 1 and int_keys) or (tag == "array" and (n == 0 or int_keys)):
                out_list: list[Any] = [None] * n
                for k, v in items:
                    out_list[k - 1] = self._item(conv, v, keep_functions, depth, path)
                return out_list
            out: dict[str, Any] = {}
            for k, v in items:
                if isinstance(k, str):
                    key = clean_text(k)
                elif isinstance(k, bool):
                    continue
                elif isinstance(k, int):
                    key = str(k)
                elif isinstance(k, float):
                    key = _float_key(k)
                else:
                    continue
                out[key] = self._item(conv, v, keep_functions, depth, path)
            return out
        finally:
            path.discard(addr)

    def _item(self, conv: Any, v: Any, keep_functions: bool, depth: int, path: set[str]) -> Any:
        if v is None or isinstance(v, bool | int | float):
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                return None
            return v
        if isinstance(v, str):
            return clean_text(v)
        return conv(v, keep_functions=keep_functions, _depth=depth + 1, _path=path)

    def to_lua(self, value: Any) -> Any:
        """Convert Python data to Lua: dict -> table, list -> 1-based table (empty ones marked arrays)."""
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, dict):
            t = self._new_table()
            for k, v in value.items():
                if v is None:
                    continue
                t[k if isinstance(k, str | int) else str(k)] = self.to_lua(v)
            return t
        if isinstance(value, list | tuple):
            if not value:
                return self.m.mark_array(self._new_table())
            t = self._new_table()
            for i, v in enumerate(value, 1):
                if v is not None:
                    t[i] = self.to_lua(v)
            return t
        if value is NULL:
            return self.null
        if isinstance(value, bytes):
            return value.decode("utf-8", "surrogateescape")
        # Lua objects (tables, functions) pass through; anything else is a bridge bug.
        if lua_type(value) is not None:
            return value
        raise TypeError(f"cannot pass {type(value).__name__} to Lua")

    def array(self, values: Iterable[Any]) -> Any:
        """A Lua array table marked as a JSON array (stays [] when empty)."""
        return self.to_lua(list(values))


def _float_key(k: float) -> str:
    if k == int(k) and math.isfinite(k):
        return str(int(k))
    return repr(k)


def lua_error_message(e: BaseException) -> str:
    """The message of a lupa LuaError without lupa's appended traceback."""
    return strip_traceback(str(e.args[0]) if e.args else str(e))


def strip_traceback(msg: str) -> str:
    """A Lua error message without the `stack traceback:` part appended to it."""
    cut = msg.find("\nstack traceback:")
    return msg[:cut] if cut >= 0 else msg


def check_type(value: Any, expected: str, fname: str, argname: str, hint: str = "") -> Any:
    """`value` (an integral float as int for "integer"), or the §1.7 misuse error when it is not of Lua type `expected`.

    Every argument check of the globals and spec parsers ends here (script/checks.py builds on it).
    """
    actual = type_name(value)
    ok = actual == expected or (expected == "number" and actual in ("integer", "float"))
    if expected == "integer" and actual == "float" and isinstance(value, float) and value.is_integer():
        return int(value)
    if not ok:
        article = "an" if expected[:1] in "aeiou" else "a"
        raise LuaApiError(f"{fname}: {argname} must be {article} {expected}, got {actual}{hint}")
    return value


def type_name(value: Any) -> str:
    """The Lua type of a value as scripts see it ('integer'/'float' for numbers)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    kind = lua_type(value)
    return kind or "userdata"


_dump_lock = threading.Lock()
_dump_state: Any = None


def dump_bytecode(source: str) -> bytes | None:
    """`string.dump` of `source` compiled in a private Lua state (safe while a script runs); None if it does not compile."""
    global _dump_state
    with _dump_lock:
        if _dump_state is None:
            _dump_state = lua54.LuaRuntime(register_eval=False, register_builtins=False, encoding=None)
        g = _dump_state.globals()
        fn = g.load(source.encode("utf-8"), b"=verify", b"t")  # this state has no string codec
        if isinstance(fn, tuple):  # nil, message: it does not compile
            fn = fn[0]
        dump = g.string.dump(fn) if fn is not None else None
    return None if dump is None else bytes(dump)
