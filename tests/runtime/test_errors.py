"""Every service's error class derives from ServiceError, so a binding can catch the one base."""

from __future__ import annotations

import pytest

from llmspell.agents.agent import AgentError
from llmspell.events.bus import EventError
from llmspell.hooks.registry import HookError
from llmspell.providers.base import MissingKeyError, ProviderError
from llmspell.rag.embeddings import EmbeddingError
from llmspell.rag.service import RagError
from llmspell.rag.store import StoreError
from llmspell.runtime.errors import ServiceError
from llmspell.script.bridge import LuaApiError
from llmspell.sessions.artifacts import ArtifactError
from llmspell.sessions.model import SessionError
from llmspell.state.backend import StateError
from llmspell.state.store import StateValueError
from llmspell.tools.base import ToolError, ToolParamError
from llmspell.workflows.model import WorkflowConfigError, WorkflowDefinitionError

SERVICE_ERRORS = [AgentError, EventError, HookError, ProviderError, MissingKeyError, EmbeddingError, RagError,
                  StoreError, ArtifactError, SessionError, StateError, StateValueError, ToolError, ToolParamError,
                  WorkflowConfigError, WorkflowDefinitionError]


@pytest.mark.parametrize("cls", SERVICE_ERRORS, ids=lambda c: c.__name__)
def test_service_error_base(cls: type[Exception]) -> None:
    assert issubclass(cls, ServiceError)
    assert not issubclass(ServiceError, LuaApiError)  # the base is not a Lua error by itself


def test_agent_error_stays_a_lua_api_error() -> None:
    err = AgentError("Agent:execute: boom")
    assert isinstance(err, LuaApiError) and isinstance(err, ServiceError)
    assert str(err) == "Agent:execute: boom"
