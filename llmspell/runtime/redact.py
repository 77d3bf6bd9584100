"""Secret redaction before anything is persisted or logged (§6, issue 17.5).

Two rules, applied together: by value, every secret the process knows (each configured or
resolved provider key and every configured provider header value, registered by the provider
registry) is replaced wherever it appears; by shape, any string that looks like a key (OpenAI and
Anthropic `sk-…`, `Bearer …` credentials, AWS, GitHub, Slack, Google and Groq keys,
JWTs) is replaced too. State values, session timelines and records, artifact metadata, cassettes
and log lines all go through here.
"""

from __future__ import annotations

import re
import threading
from typing import Any

REDACTED = "[REDACTED]"
#: Registered values shorter than this are not treated as secrets (they would shred ordinary text).
MIN_SECRET_LEN = 8

_SECRET_RE = re.compile(
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}"
    r"|Bearer\s+[A-Za-z0-9\-._~+/]+=*"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|gsk_[A-Za-z0-9]{20,}"
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"
)
# Cheap pre-check: a string without any of these markers (or a registered value) cannot hold a secret.
_MARKERS = ("sk-", "Bearer", "AKIA", "gh", "github_pat_", "xox", "AIza", "gsk_", "eyJ")

_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_values_re: re.Pattern[str] | None = None
_header_names: frozenset[str] = frozenset()


def register_secret(value: Any) -> None:
    """Remember a secret value so it is replaced wherever it appears (keys, header values)."""
    global _values, _values_re
    if not isinstance(value, str):
        return
    value = value.strip()
    if len(value) < MIN_SECRET_LEN or value in _values:
        return
    with _lock:
        vals = set(_values)
        vals.add(value)
        _values = frozenset(vals)
        _values_re = re.compile("|".join(re.escape(v) for v in sorted(vals, key=len, reverse=True)))


def looks_like_secret(value: Any) -> bool:
    """A value that may be a credential: 8+ characters, no spaces, not a path, not a plain word."""
    return (isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LEN and " " not in value.strip()
            and not value.strip().isalpha() and not value.startswith(("/", "./", "~")))


def register_if_secret(value: Any) -> None:
    """Register a value met under a secret-looking name only when it could be a credential (see above)."""
    if looks_like_secret(value):
        register_secret(value)


def register_header_name(name: Any) -> None:
    """Remember a configured header name: its value is replaced in recorded requests whatever its length."""
    global _header_names
    if isinstance(name, str) and name:
        with _lock:
            _header_names = _header_names | {name.lower()}


def secret_header_names() -> frozenset[str]:
    return _header_names


def redact_text(s: str) -> tuple[str, int]:
    """`s` with secrets replaced, and how many were replaced."""
    total = 0
    vre = _values_re
    if vre is not None and any(v in s for v in _values):
        s, n = vre.subn(REDACTED, s)
        total += n
    if any(m in s for m in _MARKERS):
        s, n = _SECRET_RE.subn(REDACTED, s)
        total += n
    return s, total


def scrub(s: str) -> str:
    """`s` with secrets replaced (the count dropped)."""
    return redact_text(s)[0]


def redact_value(value: Any) -> tuple[Any, int]:
    """A copy of a JSON-able value with every secret-looking substring replaced (only copies on change)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict | list | tuple):
        total = 0
        out: Any = None  # a copy (a dict, or a list for a list or tuple), made at the first change
        for k, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            nv, n = redact_value(v)
            if n:
                if out is None:
                    out = dict(value) if isinstance(value, dict) else list(value)
                out[k] = nv
                total += n
        return (out if out is not None else value), total
    return value, 0


def redact_json(data: bytes) -> tuple[bytes, int]:
    """Redact secrets inside serialized JSON (token patterns never cross a quote, so structure is kept)."""
    text = data.decode("utf-8", "surrogateescape")
    out, n = redact_text(text)
    return (out.encode("utf-8", "surrogateescape"), n) if n else (data, 0)
