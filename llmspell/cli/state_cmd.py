"""`llmspell state show|clear|export|import`: inspect and move the configured State backend's data."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmspell.cli.common import emit, load_config_or_exit

EXIT_OK, EXIT_ERROR = 0, 1


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("state", parents=[parent], help="show, clear, export or import persistent State",
                       description="Work on the State backend configured by [state] (or LLMSPELL_STATE_BACKEND / "
                                   "LLMSPELL_STATE_PATH).",
                       epilog="examples: llmspell state show custom; llmspell state export backup.json")
    ssub = p.add_subparsers(dest="state_cmd", metavar="ACTION", required=True)
    show = ssub.add_parser("show", parents=[parent], help="list scopes, keys and values")
    show.add_argument("scope", nargs="?", help="only this scope")
    show.add_argument("--key", help="only this key (needs SCOPE)")
    show.add_argument("--all", action="store_true", help="include the reserved session/artifact scopes")
    show.add_argument("--keys-only", action="store_true", help="print keys without values")
    show.set_defaults(func=cmd_show)
    clear = ssub.add_parser("clear", parents=[parent], help="delete every key of a scope (or of all scopes)")
    clear.add_argument("scope", nargs="?", help="the scope to clear")
    clear.add_argument("--all", action="store_true", help="clear every user scope")
    clear.set_defaults(func=cmd_clear)
    exp = ssub.add_parser("export", parents=[parent], help="write all entries as JSON")
    exp.add_argument("file", nargs="?", help="output file (default: stdout)")
    exp.add_argument("--all", action="store_true", help="include sessions and artifacts")
    exp.set_defaults(func=cmd_export)
    imp = ssub.add_parser("import", parents=[parent], help="read entries written by export")
    imp.add_argument("file", help="a JSON file from `llmspell state export` ('-' for stdin)")
    imp.add_argument("--replace", action="store_true", help="clear the scopes in the file before importing")
    imp.set_defaults(func=cmd_import)


def _open(args: argparse.Namespace) -> Any:
    from llmspell.state import build_state

    config = load_config_or_exit(args)
    store = build_state(config)
    if store.open_error:
        sys.stderr.write(f"Error: {store.open_error}\n")
        raise SystemExit(EXIT_ERROR)
    return store


def _fmt(args: argparse.Namespace) -> str:
    return getattr(args, "output", "text")


def _fail(e: Exception) -> int:
    sys.stderr.write(f"Error: {e}\n")
    return EXIT_ERROR


def cmd_show(args: argparse.Namespace) -> int:
    from llmspell.state import StateError

    store = _open(args)
    try:
        if args.key is not None and not args.scope:
            sys.stderr.write("Error: --key needs a SCOPE (llmspell state show SCOPE --key KEY)\n")
            return 2
        scopes = [args.scope] if args.scope else store.scopes(include_reserved=args.all)
        data: dict[str, dict[str, Any]] = {}
        for scope in scopes:
            keys = [args.key] if args.key is not None else store.list_keys(scope)
            data[scope] = {k: store.load(scope, k) for k in keys if args.key is None or store.exists(scope, k)}
        usage = store.storage_usage()
    except StateError as e:
        return _fail(e)
    finally:
        store.close()
    if args.key is not None and not data.get(args.scope):
        sys.stderr.write(f"Error: no key '{args.key}' in scope '{args.scope}'\n")
        return EXIT_ERROR
    if _fmt(args) != "text":
        emit({"backend": usage.get("backend"), "path": usage.get("path"), "scopes": data}, _fmt(args))
        return EXIT_OK
    out = sys.stdout
    out.write(f"# {usage.get('backend')} {usage.get('path') or ''}: {usage.get('keys')} keys, "
              f"{usage.get('total_bytes')} bytes\n")
    for scope, entries in data.items():
        out.write(f"[{scope}] {len(entries)} keys\n")
        for k, v in entries.items():
            if args.keys_only:
                out.write(f"  {k}\n")
            else:
                text = json.dumps(v, ensure_ascii=False, sort_keys=True)
                if len(text) > 200 and args.key is None:
                    text = text[:197] + "..."
                out.write(f"  {k} = {text}\n")
    return EXIT_OK


def cmd_clear(args: argparse.Namespace) -> int:
    from llmspell.state import StateError

    if not args.scope and not args.all:
        sys.stderr.write("Error: name a SCOPE or pass --all (llmspell state clear custom)\n")
        return 2
    store = _open(args)
    try:
        scopes = [args.scope] if args.scope else store.scopes()
        counts = {s: store.clear(s) for s in scopes}
    except StateError as e:
        return _fail(e)
    finally:
        store.close()
    if _fmt(args) != "text":
        emit({"cleared": counts, "total": sum(counts.values())}, _fmt(args))
    else:
        for s, n in counts.items():
            sys.stdout.write(f"cleared {n} keys from scope '{s}'\n")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from llmspell.state import StateError

    store = _open(args)
    try:
        entries = store.export(include_reserved=args.all)
        backend = store.backend_name
    except StateError as e:
        return _fail(e)
    finally:
        store.close()
    payload = {"format": "llmspell-state", "version": 1, "backend": backend, "entries": entries}
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    if args.file and args.file != "-":
        with open(args.file, "w", encoding="utf-8") as f:
            f.write(text)
        sys.stderr.write(f"exported {len(entries)} keys to {args.file}\n")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from llmspell.state import StateError

    try:
        raw = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
        payload = json.loads(raw)
    except OSError as e:
        return _fail(OSError(f"cannot read {args.file}: {e.strerror}"))
    except ValueError as e:
        return _fail(ValueError(f"{args.file} is not valid JSON: {e}"))
    entries = payload.get("entries") if isinstance(payload, dict) else None
    if not isinstance(entries, dict):
        return _fail(ValueError(f"{args.file} has no 'entries' object (write it with `llmspell state export`)"))
    store = _open(args)
    try:
        if args.replace:
            for scope in sorted({k.split(':', 1)[0] for k in entries}):
                store.clear(scope)
        n = store.import_entries(entries)
    except StateError as e:
        return _fail(e)
    finally:
        store.close()
    if _fmt(args) != "text":
        emit({"imported": n}, _fmt(args))
    else:
        sys.stdout.write(f"imported {n} keys\n")
    return EXIT_OK
