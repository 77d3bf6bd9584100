"""An agent exposed as a tool (Agent.wrap_as_tool): takes {input = string}, returns the reply text."""

from __future__ import annotations

from typing import Any

from llmspell.tools.base import Param, Tool, ToolContext, ToolError, ToolOutput, ToolSpec


class _AgentTool(Tool):
    """Runs the wrapped agent once per call; provider failures are tool failures."""

    is_async = True

    def __init__(self, spec: ToolSpec, agent: Any) -> None:
        super().__init__(spec)
        self._agent = agent

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        text = params.get("input")
        if not isinstance(text, str) or not text.strip():
            raise ToolError(f"{self.spec.name}: parameter 'input' must be a non-empty string")
        result = await self._agent.aexecute({"text": text})
        return ToolOutput(str(result.get("text") or ""), metadata={"agent": self._agent.name})


def agent_tool(agent: Any, tool_name: str, description: str = "") -> tuple[ToolSpec, Tool]:
    """The spec and tool object that wrap `agent` under `tool_name`."""
    spec = ToolSpec(
        name=tool_name, category="utility",
        description=description or f"Ask the agent '{agent.name}' ({agent.provider}/{agent.model})",
        params=(Param("input", "string", "the message for the agent", required=True),),
        impl="llmspell.agents.as_tool:_AgentTool", version="1.0.0",
    )
    return spec, _AgentTool(spec, agent)
