"""Agents: LLM-backed objects built by Agent.builder(), executed through the provider registry."""

from llmspell.agents.agent import Agent, AgentConfig, AgentError
from llmspell.agents.registry import AgentRegistry

__all__ = ["Agent", "AgentConfig", "AgentError", "AgentRegistry"]
