"""The services a runtime is built with satisfy the Protocols layer 2 and the bindings code against."""

from __future__ import annotations

from typing import Any

import pytest

from llmspell.script import protocols as p

#: Services field -> the Protocol its value must satisfy (script/services.py types it so).
FIELDS: dict[str, type] = {
    "state": p.StateService, "events": p.EventService, "hooks": p.HookService, "sessions": p.SessionService,
    "artifacts": p.ArtifactService, "rag": p.RagService, "agents": p.AgentService, "tools": p.ToolService,
    "workflows": p.WorkflowService, "tool_invoker": p.ToolInvokerService, "workflow_engine": p.WorkflowEngineService,
    "debug": p.DebugCapture,
}


@pytest.fixture
def full_runtime(monkeypatch: pytest.MonkeyPatch, lua_runtime: Any) -> Any:
    """`lua_runtime` with RAG on (sessions are on by default), so every service exists."""
    return lua_runtime


@pytest.fixture(autouse=True)
def _rag_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSPELL_RAG_ENABLED", "1")


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_built_service_satisfies_its_protocol(full_runtime: Any, name: str) -> None:
    value = getattr(full_runtime.services, name)
    assert value is not None, f"services.{name} was not built"
    assert isinstance(value, FIELDS[name]), f"services.{name} ({type(value).__name__}) lacks {FIELDS[name].__name__}"


def test_a_stand_in_missing_a_method_does_not_satisfy() -> None:
    class HalfState:
        def load(self, scope: str, key: str, default: Any = None) -> Any:
            return default

    assert not isinstance(HalfState(), p.StateService)


def test_services_has_no_untyped_extra_dict(full_runtime: Any) -> None:
    assert not hasattr(full_runtime.services, "extra")
