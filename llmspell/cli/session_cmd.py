"""`llmspell session list|show|replay|delete`: sessions persisted in the configured state backend."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmspell.cli.common import emit, load_config_or_exit

EXIT_OK, EXIT_ERROR = 0, 1


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("session", parents=[parent], help="list, show, replay or delete sessions",
                       description="Sessions recorded by scripts (Session.create) in the configured state backend.",
                       epilog="examples: llmspell session list --status completed; llmspell session replay ID")
    ssub = p.add_subparsers(dest="session_cmd", metavar="ACTION", required=True)
    ls = ssub.add_parser("list", parents=[parent], help="sessions, newest first")
    ls.add_argument("--status", help="active, suspended, completed, failed or archived")
    ls.add_argument("--tag", action="append", default=[], help="only sessions with this tag (repeatable)")
    ls.add_argument("--limit", type=int, default=None)
    ls.set_defaults(func=cmd_list)
    show = ssub.add_parser("show", parents=[parent], help="one session, its artifacts and its timeline")
    show.add_argument("id", metavar="ID")
    show.add_argument("--timeline", action="store_true", help="print every recorded hook/event entry")
    show.set_defaults(func=cmd_show)
    rp = ssub.add_parser("replay", parents=[parent], help="re-run a session's recorded hook/event timeline")
    rp.add_argument("id", metavar="ID")
    rp.add_argument("--hooks", metavar="FILE", help="a Lua script run first (e.g. one that registers hooks)")
    rp.add_argument("--start", type=int, default=1, help="first timeline step (1-based)")
    rp.add_argument("--end", type=int, default=None, help="last timeline step")
    rp.add_argument("--mode", choices=("exact", "modified", "simulate", "debug"), default="exact")
    rp.set_defaults(func=cmd_replay)
    rm = ssub.add_parser("delete", parents=[parent], help="delete a session with its artifacts and state")
    rm.add_argument("id", metavar="ID")
    rm.set_defaults(func=cmd_delete)


def _services(args: argparse.Namespace) -> Any:
    """State, events, hooks, sessions and artifacts only (no providers or Lua)."""
    from llmspell.events import build_bus
    from llmspell.hooks import build_registry
    from llmspell.script.services import Services
    from llmspell.sessions import build_sessions
    from llmspell.sessions.artifacts import build_artifacts
    from llmspell.state import build_state

    config = load_config_or_exit(args)
    s = Services(config=config)
    s.state = build_state(config, s)
    if s.state.open_error:
        sys.stderr.write(f"Error: {s.state.open_error}\n")
        raise SystemExit(EXIT_ERROR)
    s.events = build_bus(config, s)
    s.hooks = build_registry(config, s)
    s.sessions = build_sessions(config, s)
    if s.sessions is None:
        sys.stderr.write("Error: sessions are disabled ([sessions] enabled = false)\n")
        raise SystemExit(EXIT_ERROR)
    s.artifacts = build_artifacts(config, s)
    return s


def _err(e: Exception) -> int:
    sys.stderr.write(f"Error: {e}\n")
    return EXIT_ERROR


def cmd_list(args: argparse.Namespace) -> int:
    from llmspell.sessions import SessionError

    s = _services(args)
    try:
        recs = s.sessions.list(args.tag or None, args.status, args.limit)
        s.sessions.flush()
    except SessionError as e:
        return _err(e)
    rows = [r.public() for r in recs]
    if getattr(args, "output", "text") != "text":
        emit({"sessions": rows}, args.output)
        return EXIT_OK
    if not rows:
        sys.stdout.write("no sessions\n")
        return EXIT_OK
    sys.stdout.write(f"{'ID':36}  {'STATUS':9}  {'CREATED':24}  {'ARTIFACTS':>9}  NAME\n")
    for r in rows:
        sys.stdout.write(f"{r['id']:36}  {r['status']:9}  {r['created_at']:24}  {r['artifact_count']:>9}  "
                         f"{r['name']}\n")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from llmspell.sessions import SessionError

    s = _services(args)
    try:
        rec = s.sessions.get(args.id)
        if rec is None:
            return _err(SessionError(f"session '{args.id}' not found"))
        info = rec.public()
        info["artifacts"] = s.artifacts.list(rec.id) if s.artifacts is not None else []
        info["replay"] = s.sessions.replay_metadata(rec.id)
        timeline = s.sessions.timeline(rec.id)
        s.sessions.flush()
    except SessionError as e:
        return _err(e)
    if args.timeline:
        info["timeline"] = timeline
    if getattr(args, "output", "text") != "text":
        emit(info, args.output)
        return EXIT_OK
    out = sys.stdout
    for k in ("id", "name", "description", "status", "reason", "created_at", "updated_at", "parent_id",
              "operation_count", "artifact_count"):
        if info.get(k) not in (None, ""):
            out.write(f"{k:16} {info[k]}\n")
    if info.get("tags"):
        out.write(f"{'tags':16} {', '.join(info['tags'])}\n")
    if info.get("metadata"):
        out.write(f"{'metadata':16} {json.dumps(info['metadata'], sort_keys=True)}\n")
    rp = info["replay"] or {}
    out.write(f"{'timeline':16} {rp.get('events', 0)} events, {rp.get('hooks', 0)} hook runs, "
              f"{rp.get('duration_ms', 0)} ms\n")
    for a in info["artifacts"]:
        out.write(f"  artifact #{a['sequence']} {a['name']} v{a['version']} ({a['type']}, {a['size']} bytes, "
                  f"{a['content_hash'][:12]})\n")
    for entry in info.get("timeline", []):
        extra = f" -> {entry['action']}" if entry.get("action") else ""
        data = json.dumps(entry.get("data"), sort_keys=True)[:120]
        out.write(f"  {entry.get('seq', ''):>4} {entry['kind']:5} {entry['name']}{extra} {data}\n")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from llmspell.bootstrap import create_runtime
    from llmspell.script.engine import ScriptError, StreamSink
    from llmspell.sessions import SessionError
    from llmspell.sessions.replay import ReplayOptions

    config = load_config_or_exit(args)
    rt = create_runtime(config, stdout=StreamSink(sys.stdout), stderr=StreamSink(sys.stderr))
    try:
        if rt.services.sessions is None:
            return _err(SessionError("sessions are disabled ([sessions] enabled = false)"))
        if args.hooks:
            rt.run_file(args.hooks)
        opts = ReplayOptions(start_from=args.start, end_at=args.end, mode=args.mode)
        result = rt.services.sessions.replay(args.id, opts)
    except ScriptError as e:
        return _err(Exception(e.full_message))
    except SessionError as e:
        return _err(e)
    finally:
        rt.close()
    if getattr(args, "output", "text") != "text":
        emit(result, args.output)
    else:
        sys.stdout.write(f"replayed {result['steps_replayed']}/{result['total_steps']} steps of session {args.id} "
                         f"in {result['duration_ms']} ms: {result['failures']} failures, "
                         f"{len(result['differences'])} differences\n")
        for d in result["differences"]:
            sys.stdout.write(f"  step {d.get('step')}: {d.get('description')}\n")
    return EXIT_OK if result["success"] else EXIT_ERROR


def cmd_delete(args: argparse.Namespace) -> int:
    from llmspell.sessions import SessionError

    s = _services(args)
    try:
        s.sessions.delete(args.id)
    except SessionError as e:
        return _err(e)
    if getattr(args, "output", "text") != "text":
        emit({"deleted": args.id}, args.output)
    else:
        sys.stdout.write(f"deleted session {args.id}\n")
    return EXIT_OK
