"""Jupyter wire format: multipart frames, HMAC-SHA256 signing, constant-time verification.

A message on the wire is ``[ident..., b"<IDS|MSG>", signature, header, parent_header, metadata,
content, buffer...]``. The signature is the lowercase hex HMAC of the four JSON frames, keyed
with the connection file's ``key`` taken as UTF-8 bytes (an empty key disables signing).
Frames that fail any check raise :class:`WireError`; the caller logs the reason and drops them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

log = logging.getLogger("llmspell.kernel.wire")

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Deepest nesting accepted in a received content or metadata frame (and sent as application/json).
MAX_JSON_DEPTH = 100
#: Deepest nesting accepted in a received header or parent_header (they are flat objects).
MAX_HEADER_DEPTH = 8
_EMPTY = b"{}"
_REQUIRED_HEADER = ("msg_id", "msg_type")
_DIGESTS = {"hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512, "hmac-md5": hashlib.md5}


class WireError(ValueError):
    """A frame list that is not a valid, authentic message (the reason is the message)."""


@dataclass(slots=True)
class Message:
    """One Jupyter message, as received or about to be sent."""

    header: dict[str, Any]
    parent_header: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    buffers: list[bytes] = field(default_factory=list)
    idents: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))


def dumps(obj: Any) -> bytes:
    """Fast JSON (orjson); invalid UTF-8 (lone surrogates) becomes U+FFFD, unknown types str()."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return orjson.dumps(_clean(obj), option=orjson.OPT_NON_STR_KEYS, default=str)


def _clean(obj: Any) -> Any:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return obj.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(obj, dict):
        return {_clean(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests dicts/lists deeper than `limit` levels (iterative, stops early)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            items: Any = v.values()
        elif isinstance(v, list | tuple):
            items = v
        else:
            continue
        if d > limit:
            return True
        stack.extend((x, d + 1) for x in items if isinstance(x, dict | list | tuple))
    return False


def _loads_object(frame: bytes, name: str, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise WireError(f"bad JSON in {name}: {e}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WireError(f"{name} is not a JSON object")
    if json_depth_exceeds(value, max_depth):
        raise WireError(f"{name} nests deeper than {max_depth} levels")
    return value


def utcnow_iso() -> str:
    """The current time as ISO 8601 with a time zone (header `date`)."""
    return datetime.now(UTC).isoformat()


class Session:
    """Signs, serialises and verifies messages for one connection key (like jupyter_client's)."""

    def __init__(self, key: str | bytes = b"", *, signature_scheme: str = "hmac-sha256",
                 username: str = "llmspell", session_id: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, history_size: int = 1 << 16) -> None:
        self.key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        try:
            digestmod = _DIGESTS[signature_scheme]
        except KeyError:
            raise ValueError(f"unsupported signature_scheme {signature_scheme!r}") from None
        self.signature_scheme = signature_scheme
        self._hmac = hmac.new(self.key, digestmod=digestmod) if self.key else None
        self.username = username
        self.session = session_id or uuid.uuid4().hex
        self._id_prefix = f"{self.session[:8]}-{os.getpid()}-"
        self._counter = itertools.count(1)
        self.max_message_bytes = int(max_message_bytes) if max_message_bytes else 0
        self._seen: set[bytes] = set()
        self._seen_order: deque[bytes] = deque()
        self._history_size = history_size
        self._seen_lock = threading.Lock()

    # ------------------------------------------------------------------ signing
    def sign(self, parts: Sequence[bytes]) -> bytes:
        """Hex HMAC of the JSON frames, or b"" when the key is empty."""
        if self._hmac is None:
            return b""
        h = self._hmac.copy()
        for p in parts:
            h.update(p)
        return h.hexdigest().encode("ascii")

    def new_msg_id(self) -> str:
        """A unique message id: session prefix, pid and a counter (cheaper than uuid4)."""
        return f"{self._id_prefix}{next(self._counter)}"

    def header(self, msg_type: str) -> dict[str, Any]:
        return {
            "msg_id": self.new_msg_id(), "msg_type": msg_type, "username": self.username,
            "session": self.session, "date": utcnow_iso(), "version": PROTOCOL_VERSION,
        }

    def serialize(self, msg_type: str, content: Any = None, parent: dict[str, Any] | None = None, *,
                  metadata: dict[str, Any] | None = None, idents: Sequence[bytes] = (),
                  buffers: Sequence[bytes] = (), header: dict[str, Any] | None = None) -> list[bytes]:
        """The frame list for a new message (fresh msg_id and date, so signatures never repeat)."""
        h = dumps(header if header is not None else self.header(msg_type))
        p = dumps(parent) if parent else _EMPTY
        m = dumps(metadata) if metadata else _EMPTY
        c = dumps(content) if content else _EMPTY
        frames = [*idents, DELIM, self.sign((h, p, m, c)), h, p, m, c]
        if buffers:
            frames.extend(bytes(b) for b in buffers)
        return frames

    # ---------------------------------------------------------------- receiving
    def deserialize(self, frames: Sequence[Any], *, check_replay: bool = True) -> Message:
        """Verify and parse a received frame list (bytes or zmq.Frame); raise WireError on any fault."""
        parts = [f if isinstance(f, bytes) else f.bytes for f in frames]
        if self.max_message_bytes:
            size = sum(len(p) for p in parts)
            if size > self.max_message_bytes:
                raise WireError(f"message of {size} bytes is larger than max_message_bytes "
                                f"({self.max_message_bytes})")
        try:
            i = parts.index(DELIM)
        except ValueError:
            raise WireError("no <IDS|MSG> delimiter") from None
        idents = parts[:i]
        body = parts[i + 1:]
        if len(body) < 5:
            raise WireError(f"expected signature and 4 JSON frames after the delimiter, got {len(body)} frames")
        sig, h, p, m, c = body[:5]
        if self._hmac is not None:
            if not sig:
                raise WireError("unsigned message (the connection has a key)")
            expected = self.sign((h, p, m, c))
            if not hmac.compare_digest(sig, expected):
                raise WireError("bad signature")
            if check_replay and not self._remember(sig):
                raise WireError("replayed message (duplicate signature)")
        header = _loads_object(h, "header", MAX_HEADER_DEPTH)
        for k in _REQUIRED_HEADER:
            if not isinstance(header.get(k), str) or not header.get(k):
                raise WireError(f"header has no {k}")
        return Message(
            header=header,
            parent_header=_loads_object(p, "parent_header", MAX_HEADER_DEPTH),
            metadata=_loads_object(m, "metadata"),
            content=_loads_object(c, "content"),
            buffers=body[5:],
            idents=idents,
        )

    def _remember(self, sig: bytes) -> bool:
        """Record a signature; False when it was already seen (a replay)."""
        with self._seen_lock:
            if sig in self._seen:
                return False
            self._seen.add(sig)
            self._seen_order.append(sig)
            if len(self._seen_order) > self._history_size:
                self._seen.discard(self._seen_order.popleft())
            return True
