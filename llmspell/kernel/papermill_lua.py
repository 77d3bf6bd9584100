"""papermill support: a parameter translator for Lua, so `papermill nb.ipynb out.ipynb -p name value` works.

papermill looks translators up by kernel name, then by language, in its registry
(`papermill.translators.papermill_translators`). papermill 2.x loads packages' engines through the
`papermill.engine` entry point group each time it is imported, and has no entry point group of
its own for translators; so this module is named by llmspell's `papermill.engine` entry point and
registers the Lua translator (for the kernel `llmspell` and the language `lua`) when papermill
loads it. The engine itself is papermill's default nbclient engine, unchanged.
"""

from __future__ import annotations

import math
import re
from typing import Any


class _NBClientEngineAlias(type):
    """Every attribute of the class is papermill's NBClientEngine's (looked up when first used)."""

    def __getattr__(cls, name: str) -> Any:
        from papermill.engines import NBClientEngine

        return getattr(NBClientEngine, name)


class LlmspellEngine(metaclass=_NBClientEngineAlias):
    """papermill's nbclient engine under llmspell's name (the entry point; loading it registers LuaTranslator).

    Defined before papermill is imported: papermill's own import loads this entry point, and must
    find the engine even when this module is what started importing papermill.
    """


from papermill.models import Parameter  # noqa: E402 - after LlmspellEngine, see its docstring
from papermill.translators import Translator, papermill_translators  # noqa: E402

from llmspell.script.docs import KEYWORDS  # noqa: E402

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = frozenset(KEYWORDS)
_PARAM_LINE = re.compile(r"^\s*(?:local\s+)?(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>.*?)\s*(?:--\s*(?P<help>.*))?$")


class LuaTranslator(Translator):
    """Python values as Lua source: nil, booleans, numbers, strings, and tables for lists and dicts."""

    @classmethod
    def translate_escaped_str(cls, str_val: Any) -> str:
        """A double-quoted Lua string; quotes, backslashes and control characters escaped."""
        out = ['"']
        for ch in str(str_val):
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\n":
                out.append("\\n")
            elif ord(ch) < 32 or ord(ch) == 127:
                out.append(f"\\{ord(ch):03d}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    @classmethod
    def translate_none(cls, val: Any) -> str:
        return "nil"

    @classmethod
    def translate_float(cls, val: float) -> str:
        if math.isnan(val):
            return "(0/0)"
        if math.isinf(val):
            return "math.huge" if val > 0 else "-math.huge"
        return repr(val)

    @classmethod
    def translate_dict(cls, val: dict[Any, Any]) -> str:
        items = ", ".join(f"[{cls.translate_escaped_str(k)}] = {cls.translate(v)}" for k, v in val.items())
        return "{" + items + "}"

    @classmethod
    def translate_list(cls, val: list[Any]) -> str:
        return "{" + ", ".join(cls.translate(v) for v in val) + "}"

    @classmethod
    def comment(cls, cmt_str: str) -> str:
        return f"-- {cmt_str}".strip()

    @classmethod
    def assign(cls, name: str, str_val: str) -> str:
        """`name = value` (a global, so later cells see it); a name Lua cannot take is refused."""
        if not _NAME.match(name) or name in _KEYWORDS:
            raise ValueError(f"{name!r} is not a Lua variable name")
        return f"{name} = {str_val}"

    @classmethod
    def inspect(cls, parameters_cell: Any) -> list[Parameter]:
        """The `name = value -- help` lines of a parameters cell (`papermill --help-notebook`)."""
        found = []
        for line in str(getattr(parameters_cell, "source", "")).splitlines():
            m = _PARAM_LINE.match(line)
            if m is None or m.group("name") in _KEYWORDS:
                continue
            found.append(Parameter(name=m.group("name"), inferred_type_name="None",
                                   default=m.group("value"), help=m.group("help") or ""))
        return found


papermill_translators.register("lua", LuaTranslator)
papermill_translators.register("llmspell", LuaTranslator)
