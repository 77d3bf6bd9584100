"""One module per Lua global; each exposes `install(rt: ScriptRuntime) -> bool | None`.

`install` returns False when the global is not present in this configuration (RAG when disabled,
Session/Artifact when sessions are disabled). The composition root (llmspell.bootstrap) hands
`install_globals` to each ScriptRuntime, so the engine (layer 2) never imports its bindings (layer 4).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.script")

#: Globals installed in this order.
GLOBAL_MODULES: tuple[str, ...] = (
    "json", "utils", "logger", "debug", "streaming", "config", "args",
    "provider", "agent", "tool", "workflow", "state", "event", "hook",
    "session", "artifact", "replay", "rag", "metrics",
)


def install_globals(rt: ScriptRuntime, names: Sequence[str] = GLOBAL_MODULES) -> list[str]:
    """Install the named globals into `rt` in order; returns those present in this configuration."""
    installed: list[str] = []
    for name in names:
        modname = f"{__name__}.{name}"
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
            log.debug("global module %s is not present", name)
            continue
        if mod.install(rt) is not False:
            installed.append(name)
    return installed
