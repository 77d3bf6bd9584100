"""The record of one app run, as the kernel driver produced it and the judge reads it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: How an execution ended, from the harness's point of view.
STATUSES = ("ok", "error", "timeout", "kernel_died", "harness_error")


@dataclass
class RunResult:
    """One execution of one app on one kernel, with the figures the kernel reported."""

    app: str
    repetition: int
    status: str
    wall_s: float
    output_dir: str
    log_path: str = ""
    stdout: str = ""
    stderr: str = ""
    error_name: str = ""
    error_value: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    rss_bytes: int = 0
    kernel_pid: int = 0
    traffic: str = "replay"

    @property
    def error(self) -> str:
        """A one-line description of how the run failed ('' when it did not)."""
        if self.status == "ok":
            return ""
        text = f"{self.error_name}: {self.error_value}".strip(": ").strip()
        return f"{self.status}: {text}" if text else self.status

    @property
    def cassette_miss(self) -> bool:
        """True when the failure is a replay request that the cassette does not hold."""
        low = f"{self.error_value}\n{self.stderr}".lower()
        return "replay: no recorded response" in low or "replay: no cassette" in low or (
            "cassette" in low and ("no match" in low or "miss" in low))

    def figure(self, key: str, default: Any = 0) -> Any:
        return self.figures.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
