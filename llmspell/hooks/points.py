"""Hook points (§11.2) and their name matching: case-insensitive, `_` ignored."""

from __future__ import annotations

POINTS: tuple[str, ...] = (
    "BeforeAgentInit", "AfterAgentInit", "BeforeAgentExecution", "AfterAgentExecution", "AgentError",
    "BeforeAgentShutdown", "AfterAgentShutdown",
    "BeforeToolDiscovery", "AfterToolDiscovery", "ToolValidation", "BeforeToolExecution", "AfterToolExecution",
    "ToolError",
    "BeforeWorkflowStart", "BeforeWorkflowStage", "AfterWorkflowStage", "WorkflowStageTransition",
    "AfterWorkflowComplete", "WorkflowError",
    "SessionStart", "SessionEnd", "BeforeStateChange", "AfterStateChange", "StateChange",
    "PreExecute", "PostExecute", "PreDebug",
    "SystemShutdown", "SystemStartup", "WorkflowCheckpoint", "WorkflowRollback",
)

#: Accepted for registration but never fired in this version (§11.2).
NEVER_FIRED: frozenset[str] = frozenset({"SystemStartup", "WorkflowCheckpoint", "WorkflowRollback"})

PRIORITIES: dict[str, int] = {"highest": 0, "high": 1, "normal": 2, "low": 3, "lowest": 4}


def normalize(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_CANON: dict[str, str] = {normalize(p): p for p in POINTS}


def canonical(name: str) -> str | None:
    """The canonical point name for any accepted spelling, or None when unknown."""
    if name in POINTS:
        return name
    return _CANON.get(normalize(name)) if isinstance(name, str) else None
