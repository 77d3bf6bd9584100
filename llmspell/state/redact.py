"""Secret redaction before persistence (§6): API keys, bearer tokens, AWS keys, GitHub tokens, JWTs."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_RE = re.compile(
    r"sk-(?:ant-)?[A-Za-z0-9_\-]{20,}"
    r"|Bearer\s+[A-Za-z0-9\-._~+/]+=*"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[po]_[A-Za-z0-9]{20,}"
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"
)
# Cheap pre-check: a string without any of these markers cannot hold a secret.
_MARKERS = ("sk-", "Bearer", "AKIA", "ghp_", "gho_", "eyJ")


def redact_text(s: str) -> tuple[str, int]:
    """`s` with secrets replaced, and how many were replaced."""
    if not any(m in s for m in _MARKERS):
        return s, 0
    return _SECRET_RE.subn(REDACTED, s)


def redact_value(value: Any) -> tuple[Any, int]:
    """A copy of a JSON-able value with every secret-looking substring replaced (only copies on change)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        total = 0
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            nv, n = redact_value(v)
            if n:
                if out is None:
                    out = dict(value)
                out[k] = nv
                total += n
        return (out if out is not None else value), total
    if isinstance(value, list | tuple):
        total = 0
        items: list[Any] | None = None
        for i, v in enumerate(value):
            nv, n = redact_value(v)
            if n:
                if items is None:
                    items = list(value)
                items[i] = nv
                total += n
        return (items if items is not None else value), total
    return value, 0


_MARKERS_B = tuple(m.encode() for m in _MARKERS)


def redact_json(data: bytes) -> tuple[bytes, int]:
    """Redact secrets inside serialized JSON (token patterns never cross a quote, so structure is kept)."""
    if not any(m in data for m in _MARKERS_B):
        return data, 0
    text, n = _SECRET_RE.subn(REDACTED, data.decode("utf-8"))
    return (text.encode("utf-8"), n) if n else (data, 0)
