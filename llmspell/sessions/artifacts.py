"""ArtifactStore: content-addressed (SHA-256), deduplicated, compressed session artifacts (§9).

Layout in the state backend: `_llmspell.blob:<sha256>` holds the content once (zlib-compressed
when larger than the threshold and smaller that way), `_llmspell.blobref:<sha256>` its reference
count, `_llmspell.artifact:<session>:<sequence>` each artifact's metadata. An artifact is reached
only through its session, so one session never reads another's artifacts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import mimetypes
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from llmspell.runtime.redact import redact_value
from llmspell.sessions.model import ACTIVE, SessionError, check_id, rfc3339
from llmspell.sessions.settings import SessionSettings

_List = list  # ArtifactStore defines a method named `list`

K_BLOB = "_llmspell.blob:"
K_REF = "_llmspell.blobref:"
K_ART = "_llmspell.artifact:"
K_SEQ = "_llmspell.artseq:"

_RAW, _ZLIB = b"r", b"z"


class ArtifactError(SessionError):
    """A bad artifact call or a limit that was hit."""


@dataclass
class ArtifactId:
    """What Artifact.store returns."""

    content_hash: str
    session_id: str
    sequence: int

    def as_dict(self) -> dict[str, Any]:
        return {"content_hash": self.content_hash, "session_id": self.session_id, "sequence": self.sequence}


def _parse_time(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ArtifactError(f"Artifact.query: cannot parse time '{v}' (use RFC 3339 or epoch seconds)") from None


class ArtifactStore:
    """Artifacts of all sessions (`services.artifacts`)."""

    def __init__(self, settings: SessionSettings, backend: Callable[[], Any], sessions: Any,
                 sandbox: Callable[[str, int], tuple[str, bytes]] | None = None) -> None:
        self.settings = settings
        self._backend_fn = backend
        self.sessions = sessions
        self._sandbox = sandbox
        self._lock = threading.RLock()

    @property
    def backend(self) -> Any:
        return self._backend_fn()

    # ------------------------------------------------------------------ store
    def _session(self, fname: str, session_id: Any, *, writable: bool = False) -> Any:
        if session_id == "" or session_id is None:
            session_id = self.sessions.current
            if session_id is None:
                raise ArtifactError(f"Artifact.{fname}: no current session (pass a session id or call "
                                    "Session.set_current)")
        sid = check_id(session_id)
        rec = self.sessions.get(sid)
        if rec is None:
            raise ArtifactError(f"Artifact.{fname}: session '{sid}' not found")
        if writable and rec.status != ACTIVE:
            why = f" ({rec.reason})" if rec.reason else ""
            raise ArtifactError(f"Artifact.{fname}: session '{sid}' is {rec.status}{why}; only active sessions "
                                "accept artifacts (resume it, or Session.load it)")
        return rec

    def store(self, session_id: Any, type_: str, name: str, content: bytes, metadata: dict[str, Any] | None = None
              ) -> ArtifactId:
        """Store content as a new artifact (a new version when the name exists in the session)."""
        rec = self._session("store", session_id, writable=True)
        if not isinstance(type_, str) or not type_:
            raise ArtifactError("Artifact.store: type must be a non-empty string (e.g. 'agent_output')")
        if not isinstance(name, str) or not name:
            raise ArtifactError("Artifact.store: name must be a non-empty string")
        size = len(content)
        if size > self.settings.max_artifact_bytes:
            raise ArtifactError(f"Artifact.store: content is {size} bytes, larger than the "
                                f"{self.settings.max_artifact_bytes}-byte limit per artifact")
        meta = dict(redact_value(dict(metadata or {}))[0])  # keys never reach artifact metadata
        tags = meta.pop("tags", [])
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list):
            raise ArtifactError("Artifact.store: metadata.tags must be an array of strings")
        mime = meta.pop("mime_type", None) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        digest = hashlib.sha256(content).hexdigest()
        b = self.backend
        with self._lock:
            existing = self._metas(rec.id)
            if len(existing) >= self.settings.max_artifacts_per_session:
                raise ArtifactError(f"Artifact.store: session '{rec.id}' already has "
                                    f"{self.settings.max_artifacts_per_session} artifacts "
                                    "([sessions] max_artifacts_per_session)")
            seq_raw = b.get(K_SEQ + rec.id)
            seq = (orjson.loads(seq_raw) if seq_raw else 0) + 1
            version = 1 + sum(1 for m in existing if m["name"] == name)
            now = time.time()
            record = {"name": name, "type": type_, "size": size, "content_hash": digest, "mime_type": str(mime),
                      "created_at": rfc3339(now), "created_ts": now, "tags": [str(t) for t in tags],
                      "version": version, "custom": meta, "session_id": rec.id, "sequence": seq}
            ref_raw = b.get(K_REF + digest)
            refs = orjson.loads(ref_raw) if ref_raw else 0
            items = [(K_ART + f"{rec.id}:{seq:010d}", orjson.dumps(record)), (K_SEQ + rec.id, orjson.dumps(seq)),
                     (K_REF + digest, orjson.dumps(refs + 1))]
            if refs == 0 or not b.exists(K_BLOB + digest):
                items.append((K_BLOB + digest, self._encode(content)))
            b.put_many(items)
            rec.artifact_count = len(existing) + 1
        self.sessions.note_operation(rec.id)
        return ArtifactId(digest, rec.id, seq)

    def _encode(self, content: bytes) -> bytes:
        if len(content) > self.settings.artifact_compression_threshold:
            packed = zlib.compress(content, 6)
            if len(packed) < len(content):
                return _ZLIB + packed
        return _RAW + content

    @staticmethod
    def _decode(blob: bytes) -> bytes:
        return zlib.decompress(blob[1:]) if blob[:1] == _ZLIB else blob[1:]

    def store_file(self, session_id: Any, path: str, type_: str, metadata: dict[str, Any] | None = None) -> ArtifactId:
        """Store a file's bytes; the path must pass the file-tool sandbox (§19.1)."""
        if not isinstance(path, str) or not path:
            raise ArtifactError("Artifact.store_file: path must be a non-empty string")
        limit = self.settings.max_artifact_bytes
        try:
            if self._sandbox is not None:
                real, content = self._sandbox(path, limit)
            else:
                real = os.path.realpath(path)
                with open(real, "rb") as f:
                    content = f.read(limit + 1)
        except FileNotFoundError:
            raise ArtifactError(f"Artifact.store_file: no such file '{path}'") from None
        except IsADirectoryError:
            raise ArtifactError(f"Artifact.store_file: '{path}' is a directory") from None
        except OSError as e:
            raise ArtifactError(f"Artifact.store_file: cannot read '{path}': {e.strerror}") from None
        if len(content) > limit:
            raise ArtifactError(f"Artifact.store_file: '{path}' is larger than the {limit}-byte limit per artifact")
        meta = dict(metadata or {})
        meta.setdefault("source_path", str(real))
        return self.store(session_id, type_, os.path.basename(real), content, meta)

    # ------------------------------------------------------------------ read
    def _metas(self, sid: str) -> _List[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.backend.items(f"{K_ART}{sid}:")]

    def _find(self, sid: str, ident: Any) -> dict[str, Any] | None:
        if isinstance(ident, dict):
            if ident.get("session_id") not in (None, sid):
                return None
            seq = ident.get("sequence")
            if isinstance(seq, int):
                raw = self.backend.get(K_ART + f"{sid}:{seq:010d}")
                if raw is None:
                    return None
                meta = orjson.loads(raw)
                h = ident.get("content_hash")
                return meta if h in (None, meta["content_hash"]) else None
            ident = ident.get("content_hash")
        if isinstance(ident, str) and ident:
            matches = [m for m in self._metas(sid) if m["content_hash"] == ident.lower()]
            return matches[-1] if matches else None
        raise ArtifactError("Artifact.get: id must be an id table {content_hash, session_id, sequence} or a "
                            "content-hash string")

    def get(self, session_id: Any, ident: Any) -> dict[str, Any] | None:
        rec = self._session("get", session_id)
        meta = self._find(rec.id, ident)
        if meta is None:
            return None
        blob = self.backend.get(K_BLOB + meta["content_hash"])
        if blob is None:
            return None
        return {"content": self._decode(blob), "metadata": public(meta)}

    def list(self, session_id: Any) -> _List[dict[str, Any]]:
        rec = self._session("list", session_id)
        return [public(m) for m in self._metas(rec.id)]

    def delete(self, session_id: Any, ident: Any) -> bool:
        rec = self._session("delete", session_id)
        meta = self._find(rec.id, ident)
        if meta is None:
            return False
        with self._lock:
            self._drop(meta)
            rec.artifact_count = max(0, rec.artifact_count - 1)
        self.sessions.touch(rec.id)
        return True

    def _drop(self, meta: dict[str, Any]) -> None:
        b = self.backend
        digest = meta["content_hash"]
        ref_raw = b.get(K_REF + digest)
        refs = (orjson.loads(ref_raw) if ref_raw else 1) - 1
        key = K_ART + f"{meta['session_id']}:{int(meta['sequence']):010d}"
        if refs <= 0:
            b.put_many([], delete=[key, K_REF + digest, K_BLOB + digest])
        else:
            b.put_many([(K_REF + digest, orjson.dumps(refs))], delete=[key])

    def delete_session(self, sid: str) -> int:
        """Delete every artifact of a session (Session.delete)."""
        with self._lock:
            metas = self._metas(sid)
            for m in metas:
                self._drop(m)
            self.backend.delete(K_SEQ + sid)
        return len(metas)

    def query(self, q: dict[str, Any]) -> _List[dict[str, Any]]:
        """Artifacts matching every given criterion (§9); without session_id, the current session or all."""
        sid = q.get("session_id")
        if sid:
            sids = [self._session("query", sid).id]
        elif self.sessions.current:
            sids = [self.sessions.current]
        else:
            sids = [r.id for r in self.sessions.list()]
        after, before = _parse_time(q.get("created_after")), _parse_time(q.get("created_before"))
        tags = q.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        pattern = q.get("name_pattern")
        limit = q.get("limit")
        out = []
        for s in sids:
            for m in self._metas(s):
                if q.get("type") and m["type"] != q["type"]:
                    continue
                if pattern and not fnmatch.fnmatchcase(m["name"], str(pattern)):
                    continue
                if tags and not all(t in m["tags"] for t in tags):
                    continue
                if after is not None and m["created_ts"] <= after:
                    continue
                if before is not None and m["created_ts"] >= before:
                    continue
                if q.get("min_size") is not None and m["size"] < q["min_size"]:
                    continue
                if q.get("max_size") is not None and m["size"] > q["max_size"]:
                    continue
                out.append(public(m))
        return out[: int(limit)] if isinstance(limit, int) and limit >= 0 else out


def public(m: dict[str, Any]) -> dict[str, Any]:
    """The metadata table scripts see (§9)."""
    return {"name": m["name"], "type": m["type"], "size": m["size"], "content_hash": m["content_hash"],
            "mime_type": m["mime_type"], "created_at": m["created_at"], "tags": list(m["tags"]),
            "version": m["version"], "custom": dict(m["custom"]), "session_id": m["session_id"],
            "sequence": m["sequence"]}


def _sandbox_for(config: Any) -> Callable[[str, int], tuple[str, bytes]] | None:
    """A reader through the file tools' sandbox (§19.1): the checked real path and at most limit+1 bytes.

    The file is opened by the sandbox's descriptor walk (O_NOFOLLOW per component), so a path
    swapped for a symlink after the check is refused, as for the file tools. None when the tools
    package is absent.
    """
    try:
        from llmspell.tools.base import ToolError
        from llmspell.tools.sandbox import Sandbox, TooLargeError
    except ImportError:
        return None
    from llmspell.settings import settings_of

    roots = settings_of(config).sessions.artifact_source_roots
    box = Sandbox.from_config(list(roots) if roots else None)

    def read(path: str, limit: int) -> tuple[str, bytes]:
        try:
            real = box.resolve(path)
            return str(real), box.read_bytes(real, limit)
        except TooLargeError:
            raise ArtifactError(f"Artifact.store_file: '{path}' is larger than the {limit}-byte limit per "
                                "artifact") from None
        except ToolError as e:  # outside the roots, a symlink, not a regular file
            raise ArtifactError(f"Artifact.store_file: {e}") from None

    return read


def build_artifacts(config: Any, services: Any) -> ArtifactStore | None:
    """The `services.artifacts` factory (None when sessions are disabled or absent)."""
    sessions = getattr(services, "sessions", None)
    if sessions is None:
        return None
    return ArtifactStore(sessions.settings, lambda: sessions.backend, sessions, _sandbox_for(config))
