"""Session records, statuses and the legal lifecycle transitions (§8)."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from llmspell.runtime.errors import ServiceError

ACTIVE, SUSPENDED, COMPLETED, FAILED, ARCHIVED = "active", "suspended", "completed", "failed", "archived"
STATUSES = (ACTIVE, SUSPENDED, COMPLETED, FAILED, ARCHIVED)

#: operation -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "suspend": (frozenset({ACTIVE}), SUSPENDED),
    "resume": (frozenset({SUSPENDED}), ACTIVE),
    "complete": (frozenset({ACTIVE, SUSPENDED}), COMPLETED),
    "fail": (frozenset({ACTIVE, SUSPENDED}), FAILED),
    "archive": (frozenset({COMPLETED, FAILED}), ARCHIVED),
}

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class SessionError(ServiceError):
    """Misuse or an illegal operation on a session; the message is shown to scripts as is."""


def valid_id(sid: Any) -> bool:
    return isinstance(sid, str) and bool(_UUID_RE.match(sid))


def check_id(sid: Any) -> str:
    """The id, or SessionError `Invalid session ID: ...` for anything that is not a UUID string."""
    if not valid_id(sid):
        raise SessionError(f"Invalid session ID: {sid!r} (expected a UUID string from Session.create)")
    return str(sid).lower()


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


@dataclass
class SessionRecord:
    """Everything persisted about one session."""

    id: str
    name: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    status: str = ACTIVE
    created_at: float = 0.0
    updated_at: float = 0.0
    last_activity: float = 0.0
    ended_at: float | None = None
    artifact_count: int = 0
    operation_count: int = 0
    parent_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    policy: dict[str, Any] | None = None
    tokens_used: int = 0
    cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SessionRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def public(self) -> dict[str, Any]:
        """The table Session.get returns (§8): RFC 3339 timestamps, ints for counts."""
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "description": self.description, "tags": list(self.tags),
            "status": self.status, "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "artifact_count": int(self.artifact_count), "operation_count": int(self.operation_count),
            "metadata": dict(self.metadata),
        }
        if self.parent_id:
            out["parent_id"] = self.parent_id
        if self.reason:
            out["reason"] = self.reason
        return out
