"""The file sandbox of lua-api.md §19.1: every tool path must resolve under an allowed root."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llmspell.tools.base import ToolError


class SandboxError(ToolError):
    """A path outside the allowed roots."""


def default_roots(cwd: str | None = None) -> list[str]:
    """The CWD at start plus the system temp directory."""
    roots = [cwd or os.getcwd(), "/tmp", tempfile.gettempdir()]
    return _dedupe(roots)


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for r in items:
        if r not in seen:
            seen.append(r)
    return seen


@dataclass(frozen=True)
class Sandbox:
    """Resolves paths against the CWD and checks them against real (symlink-free) roots."""

    roots: tuple[str, ...]

    @classmethod
    def from_config(cls, allowed: Iterable[str] | None, cwd: str | None = None) -> Sandbox:
        raw = list(allowed) if allowed else default_roots(cwd)
        return cls(tuple(_dedupe(os.path.realpath(os.path.expanduser(str(r))) for r in raw)))

    def resolve(self, path: str) -> Path:
        """The absolute, resolved path; raises SandboxError when it lies outside every root."""
        if not isinstance(path, str) or path == "":
            raise SandboxError("path must be a non-empty string")
        real = os.path.realpath(os.path.join(os.getcwd(), os.path.expanduser(path)))
        for root in self.roots:
            if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
                return Path(real)
        listing = ", ".join(self.roots)
        raise SandboxError(
            f"path '{path}' is outside the allowed paths ({listing}); add it to [tools.file_operations] "
            "allowed_paths")

    def contains(self, path: str) -> bool:
        try:
            self.resolve(path)
        except SandboxError:
            return False
        return True
