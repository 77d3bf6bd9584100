"""SessionManager: lifecycle, persistence, expiry, policies and timeline recording of sessions (§8).

Sessions live in the state backend under reserved keys (`_llmspell.session:<id>`, timelines and
snapshots beside them), or in memory when `[sessions] storage_backend = "memory"`. Lifecycle
methods run on the Lua thread (they fire SessionStart / SessionEnd hooks).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from llmspell.runtime.redact import redact_value
from llmspell.sessions.model import (
    ACTIVE,
    ARCHIVED,
    COMPLETED,
    FAILED,
    STATUSES,
    SUSPENDED,
    TRANSITIONS,
    SessionError,
    SessionRecord,
    check_id,
)
from llmspell.sessions.policies import GUARDED_POINTS, SessionPolicy, TokenBucket, violation
from llmspell.sessions.settings import SessionSettings

_List = list  # the classes below define a method named `list`

log = logging.getLogger("llmspell.sessions")

K_SESSION = "_llmspell.session:"
K_TIMELINE = "_llmspell.timeline:"
K_SNAPSHOT = "_llmspell.snapshot:"


def _json_safe(v: Any) -> Any:
    try:
        return orjson.loads(orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONDecodeError):
        return str(v)


class SessionManager:
    """All sessions reachable from one runtime (`services.sessions`)."""

    def __init__(self, settings: SessionSettings, backend: Callable[[], Any], services: Any = None) -> None:
        self.settings = settings
        self._backend_fn = backend
        self._services = services
        self._cache: dict[str, SessionRecord] = {}
        self._timelines: dict[str, list[dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._lock = threading.RLock()
        self.current: str | None = None
        self._replaying = False
        self._taps_on = False
        self._policy_hooks: list[str] = []
        self._buckets: dict[str, TokenBucket] = {}
        self._usage_seen: tuple[int, float] = (0, 0.0)

    @property
    def backend(self) -> Any:
        return self._backend_fn()

    # ------------------------------------------------------------------ storage
    def _put(self, rec: SessionRecord) -> None:
        self.backend.put(K_SESSION + rec.id, orjson.dumps(redact_value(rec.to_json())[0]))
        self._dirty.discard(rec.id)

    def _fetch(self, sid: str) -> SessionRecord | None:
        rec = self._cache.get(sid)
        if rec is not None:
            return rec
        raw = self.backend.get(K_SESSION + sid)
        if raw is None:
            return None
        rec = SessionRecord.from_json(orjson.loads(raw))
        self._cache[sid] = rec
        return rec

    def _require(self, fname: str, sid: Any) -> SessionRecord:
        sid = check_id(sid)
        rec = self._fetch(sid)
        if rec is None:
            raise SessionError(f"{fname}: session '{sid}' not found")
        self._expire_if_idle(rec)
        return rec

    def _all_ids(self) -> _List[str]:
        ids = {k[len(K_SESSION):] for k in self.backend.keys(K_SESSION)}
        ids.update(self._cache)
        return list(ids)

    # ------------------------------------------------------------------ lifecycle
    def create(self, name: str = "", description: str = "", tags: _List[str] | None = None,
               metadata: dict[str, Any] | None = None, parent_id: str | None = None,
               policy: SessionPolicy | None = None) -> str:
        """A new active session; raises past `max_sessions` (expired sessions are cleaned up first)."""
        if parent_id is not None:
            parent_id = check_id(parent_id)
            if self._fetch(parent_id) is None:
                raise SessionError(f"Session.create: parent session '{parent_id}' not found")
        live = [r for r in self._cache.values() if r.status in (ACTIVE, SUSPENDED)]
        if len(live) >= self.settings.max_sessions:
            for r in live:
                self._expire_if_idle(r)
            live = [r for r in live if r.status in (ACTIVE, SUSPENDED)]
            if len(live) >= self.settings.max_sessions:
                raise SessionError(f"Session.create: too many open sessions ([sessions] max_sessions = "
                                   f"{self.settings.max_sessions}); complete or delete some")
        now = time.time()
        rec = SessionRecord(id=str(uuid.uuid4()), name=name or "", description=description or "",
                            tags=list(tags or []), status=ACTIVE, created_at=now, updated_at=now, last_activity=now,
                            parent_id=parent_id, metadata=dict(metadata or {}),
                            policy=policy.to_json() if policy else None)
        with self._lock:
            self._cache[rec.id] = rec
            self._timelines[rec.id] = []
        self._put(rec)
        if policy is not None:
            self._enable_policies()
        self._publish("session.created", rec)
        self._fire("SessionStart", rec)
        return rec.id

    def get(self, sid: Any) -> SessionRecord | None:
        """The record, or None for an unknown (well-formed) id; expiry is applied first."""
        rec = self._fetch(check_id(sid))
        if rec is not None:
            self._expire_if_idle(rec)
        return rec

    def list(self, tags: _List[str] | None = None, status: str | None = None, limit: int | None = None) -> _List[SessionRecord]:
        """Sessions, newest first, filtered by all `tags` and `status`."""
        if status is not None and status not in STATUSES:
            raise SessionError(f"Session.list: unknown status '{status}' (use {', '.join(STATUSES)})")
        out = []
        for sid in self._all_ids():
            rec = self._fetch(sid)
            if rec is None:
                continue
            self._expire_if_idle(rec)
            if status is not None and rec.status != status:
                continue
            if tags and not all(t in rec.tags for t in tags):
                continue
            out.append(rec)
        out.sort(key=lambda r: r.created_at, reverse=True)
        return out[:limit] if limit is not None and limit >= 0 else out

    def transition(self, op: str, sid: Any, reason: str | None = None) -> SessionRecord:
        """Apply a lifecycle operation; raises `cannot <op> a <status> session` when it is illegal."""
        rec = self._require(f"Session.{op}", sid)
        sources, target = TRANSITIONS[op]
        if rec.status not in sources:
            raise SessionError(f"cannot {op} a {rec.status} session")
        self._set_status(rec, target, reason)
        return rec

    def _set_status(self, rec: SessionRecord, status: str, reason: str | None = None) -> None:
        now = time.time()
        rec.status = status
        rec.updated_at = now
        if status == ACTIVE:
            rec.last_activity = now
            rec.reason = None
        if status in (COMPLETED, FAILED):
            rec.ended_at = now
            rec.reason = reason if status == FAILED else None
        self._put(rec)
        if status in (COMPLETED, FAILED):
            self._persist_timeline(rec.id)
        self._publish("session.status_changed", rec)
        if status in (COMPLETED, FAILED):
            self._fire("SessionEnd", rec)

    def _expire_if_idle(self, rec: SessionRecord) -> bool:
        timeout = self.settings.session_timeout_seconds
        if timeout > 0 and rec.status in (ACTIVE, SUSPENDED) and time.time() - rec.last_activity > timeout:
            log.info("session %s expired after %g s of inactivity", rec.id, timeout)
            self._set_status(rec, FAILED, "timeout")
            return True
        return False

    def cleanup_expired(self) -> _List[str]:
        """Mark every session idle longer than `session_timeout_seconds` failed ("timeout"); returns their ids."""
        out = []
        for sid in self._all_ids():
            rec = self._fetch(sid)
            if rec is not None and self._expire_if_idle(rec):
                out.append(sid)
        return out

    def touch(self, sid: str) -> None:
        rec = self._cache.get(sid)
        if rec is not None:
            rec.last_activity = rec.updated_at = time.time()
            self._dirty.add(sid)

    def note_operation(self, sid: str | None = None) -> None:
        """Count one operation for a session (default: the current one) and mark it active now."""
        sid = sid or self.current
        rec = self._cache.get(sid) if sid else None
        if rec is None:
            return
        rec.operation_count += 1
        rec.last_activity = rec.updated_at = time.time()
        self._dirty.add(rec.id)

    def set_current(self, sid: Any) -> str | None:
        if sid is None:
            self.current = None
            return None
        rec = self._require("Session.set_current", sid)
        self.current = rec.id
        self._timelines.setdefault(rec.id, self._load_timeline(rec.id))
        self._enable_taps()
        return rec.id

    def delete(self, sid: Any) -> bool:
        """Delete a session, its timeline, snapshot, session-scoped state and artifacts."""
        rec = self._require("Session.delete", sid)
        arts = getattr(self._services, "artifacts", None) if self._services is not None else None
        if arts is not None:
            arts.delete_session(rec.id)
        b = self.backend
        for prefix in (K_SESSION, K_TIMELINE, K_SNAPSHOT):
            b.delete(prefix + rec.id)
        b.clear(f"session:{rec.id}:")
        with self._lock:
            self._cache.pop(rec.id, None)
            self._timelines.pop(rec.id, None)
            self._buckets.pop(rec.id, None)
            self._dirty.discard(rec.id)
        if self.current == rec.id:
            self.current = None
        return True

    # ------------------------------------------------------------------ snapshots
    def save(self, sid: Any) -> bool:
        """Persist a snapshot: the record, its timeline and its session-scoped State keys, in one transaction."""
        rec = self._require("Session.save", sid)
        rec.updated_at = time.time()
        state_items = self.backend.items(f"session:{rec.id}:")
        snapshot = {"record": rec.to_json(), "saved_at": rec.updated_at,
                    "state": {k: v.decode("utf-8") for k, v in state_items}}
        items = [(K_SESSION + rec.id, orjson.dumps(rec.to_json())),
                 (K_SNAPSHOT + rec.id, orjson.dumps(snapshot))]
        tl = self._timelines.get(rec.id)
        if tl is not None:
            items.append((K_TIMELINE + rec.id, orjson.dumps(tl)))
        self.backend.put_many(items)
        self._dirty.discard(rec.id)
        return True

    def load(self, sid: Any) -> str:
        """Restore the last snapshot (record and session State); the session becomes active."""
        sid = check_id(sid)
        raw = self.backend.get(K_SNAPSHOT + sid)
        if raw is None:
            rec = self._fetch(sid)
            if rec is None:
                raise SessionError(f"Session.load: session '{sid}' not found")
        else:
            snap = orjson.loads(raw)
            rec = SessionRecord.from_json(snap["record"])
            state = {k: v.encode("utf-8") for k, v in snap.get("state", {}).items()}
            self.backend.put_many(list(state.items()), delete=[k for k in self.backend.keys(f"session:{sid}:")
                                                               if k not in state])
        with self._lock:
            self._cache[sid] = rec
            self._timelines[sid] = self._load_timeline(sid)
        if rec.status != ACTIVE:
            self._set_status(rec, ACTIVE)
        else:
            rec.last_activity = time.time()
            self._put(rec)
        if rec.policy:
            self._enable_policies()
        return sid

    def flush(self) -> None:
        """Persist changed records and timelines (runtime close)."""
        for sid in list(self._dirty):
            rec = self._cache.get(sid)
            if rec is not None:
                try:
                    self._put(rec)
                except Exception:  # noqa: BLE001 - flush is best effort at close
                    log.warning("could not persist session %s", sid, exc_info=True)
        for sid in list(self._timelines):
            if self._timelines[sid]:
                try:
                    self._persist_timeline(sid)
                except Exception:  # noqa: BLE001
                    log.warning("could not persist the timeline of session %s", sid, exc_info=True)

    # ------------------------------------------------------------------ timeline
    def _load_timeline(self, sid: str) -> _List[dict[str, Any]]:
        raw = self.backend.get(K_TIMELINE + sid)
        return orjson.loads(raw) if raw is not None else []

    def _persist_timeline(self, sid: str) -> None:
        tl = self._timelines.get(sid)
        if tl is not None:
            self.backend.put(K_TIMELINE + sid, orjson.dumps(tl))

    def timeline(self, sid: Any) -> _List[dict[str, Any]]:
        sid = check_id(sid)
        tl = self._timelines.get(sid)
        return list(tl) if tl is not None else self._load_timeline(sid)

    def _record(self, entry: dict[str, Any]) -> None:
        sid = self.current
        if sid is None or self._replaying:
            return
        tl = self._timelines.setdefault(sid, [])
        if len(tl) >= self.settings.max_timeline_entries:
            return
        entry = dict(redact_value(entry)[0])  # keys and key-shaped strings never reach the timeline
        entry["seq"] = len(tl) + 1
        tl.append(entry)

    def _enable_taps(self) -> None:
        if self._taps_on or self._services is None:
            return
        self._taps_on = True
        bus = getattr(self._services, "events", None)
        hooks = getattr(self._services, "hooks", None)
        if bus is not None:
            bus.add_tap(self._on_event)
        if hooks is not None:
            hooks.add_tap(self._on_hook)

    def _on_event(self, ev: Any) -> None:
        if self.current is None or self._replaying:
            return
        if ev.event_type.startswith(("agent.execution.completed", "tool.execution.completed", "workflow.completed")):
            self.note_operation()
        self._record({"kind": "event", "name": ev.event_type, "data": _json_safe(ev.data), "at": ev.timestamp,
                      "correlation_id": ev.correlation_id})

    def _on_hook(self, point: str, data: dict[str, Any], outcome: Any, component: tuple[str, str]) -> None:
        if self.current is None or self._replaying:
            return
        self._record({"kind": "hook", "name": point, "data": _json_safe(data), "at": time.time(),
                      "action": outcome.action, "component": list(component)})

    def can_replay(self, sid: Any) -> bool:
        rec = self.get(sid)
        return rec is not None and len(self.timeline(rec.id)) > 0

    def list_replayable(self) -> _List[str]:
        return [r.id for r in self.list() if self.timeline(r.id)]

    def replay_metadata(self, sid: Any) -> dict[str, Any] | None:
        rec = self.get(sid)
        if rec is None:
            return None
        tl = self.timeline(rec.id)
        start = tl[0]["at"] if tl else rec.created_at
        end = tl[-1]["at"] if tl else (rec.ended_at or rec.updated_at)
        from llmspell.sessions.model import rfc3339

        return {"id": rec.id, "events": sum(1 for e in tl if e["kind"] == "event"),
                "hooks": sum(1 for e in tl if e["kind"] == "hook"), "started_at": rfc3339(start),
                "ended_at": rfc3339(end), "duration_ms": int(max(0.0, end - start) * 1000)}

    def replay(self, sid: Any, options: Any) -> dict[str, Any]:
        """Re-run a session's recorded timeline through the current hooks and bus (see replay.py)."""
        from llmspell.sessions.replay import replay_timeline

        rec = self._require("Session.replay", sid)
        tl = self.timeline(rec.id)
        if not tl:
            raise SessionError(f"Session.replay: session '{rec.id}' has no recorded timeline "
                               "(set it current with Session.set_current before the work you want to replay)")
        self._replaying = True
        try:
            return replay_timeline(tl, options, hooks=getattr(self._services, "hooks", None),
                                   events=getattr(self._services, "events", None))
        finally:
            self._replaying = False

    # ------------------------------------------------------------------ policies
    def set_policy(self, sid: Any, policy: SessionPolicy | None) -> None:
        rec = self._require("Session.set_policy", sid)
        rec.policy = policy.to_json() if policy else None
        self._buckets.pop(rec.id, None)
        self._put(rec)
        if policy is not None:
            self._enable_policies()

    def _enable_policies(self) -> None:
        hooks = getattr(self._services, "hooks", None) if self._services is not None else None
        if hooks is None or self._policy_hooks:
            return
        for point in GUARDED_POINTS:
            e = hooks.register(point, self._policy_hook, "highest", language="python", name="session-policy",
                               description="session rate limit, timeouts and resource limits", tags=("policy",))
            self._policy_hooks.append(e.id)

    def _policy_hook(self, ctx: Any) -> Any:
        sid = self.current
        rec = self._cache.get(sid) if sid else None
        if rec is None or not rec.policy:
            return None
        from llmspell.hooks import HookOutcome

        policy = SessionPolicy(**rec.policy)
        self._account_usage(rec)
        bucket = None
        if policy.rate_per_second:
            bucket = self._buckets.get(rec.id)
            if bucket is None:
                bucket = self._buckets[rec.id] = TokenBucket(policy.rate_per_second, float(policy.burst))
        now = time.time()
        if rec.status != ACTIVE:
            return HookOutcome("cancel", reason=f"session {rec.id} is {rec.status}", kind="cancel")
        found = violation(policy, rec, bucket, now)
        if found is None:
            if ctx.point != "BeforeStateChange":  # the State global counts its own saves
                self.note_operation(rec.id)
            return None
        reason, expired = found
        if expired:
            self._set_status(rec, FAILED, "timeout")
        return HookOutcome("cancel", reason=reason, kind="cancel")

    def _account_usage(self, rec: SessionRecord) -> None:
        stats = getattr(self._services, "stats", None)
        if stats is None:
            return
        tokens = int(stats.input_tokens + stats.output_tokens)
        cost = float(stats.cost_usd)
        seen_t, seen_c = self._usage_seen
        if tokens < seen_t or cost < seen_c:
            seen_t, seen_c = 0, 0.0
        rec.tokens_used += tokens - seen_t
        rec.cost_usd += cost - seen_c
        self._usage_seen = (tokens, cost)

    # ------------------------------------------------------------------ notifications
    def _publish(self, event_type: str, rec: SessionRecord) -> None:
        bus = getattr(self._services, "events", None) if self._services is not None else None
        if bus is not None:
            bus.publish(event_type, {"session_id": rec.id, "status": rec.status})

    def _fire(self, point: str, rec: SessionRecord) -> None:
        hooks = getattr(self._services, "hooks", None) if self._services is not None else None
        if hooks is None or not hooks.active(point):
            return
        rt = hooks.runtime
        if rt is not None and not rt.on_lua_thread():
            return
        hooks.run(point, {"session_id": rec.id, "status": rec.status}, component=("session", rec.name or rec.id))

    def close(self) -> None:
        self.flush()


__all__ = ["ACTIVE", "ARCHIVED", "COMPLETED", "FAILED", "SUSPENDED", "SessionError", "SessionManager"]
