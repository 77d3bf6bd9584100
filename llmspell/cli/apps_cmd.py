"""`llmspell apps list` and `llmspell apps run NAME [-- args]`: the example applications for users.

Apps are read through the harness's manifest code (the same app.toml the validation harness
judges); `apps run` executes an app in-process with the same ARGS conventions as the harness.
The apps and cassettes ship inside the package (llmspell.resources finds them), so both commands
work from any directory after any install.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from llmspell.cli.common import load_config_or_exit
from llmspell.config import Overrides
from llmspell.resources import harness_module

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("apps", parents=[parent], help="list and run the example applications",
                       description="The nine example applications (apps/<name>/main.lua), layers 1-6.")
    inner = p.add_subparsers(dest="apps_command", metavar="SUBCOMMAND", parser_class=type(p))
    ls = inner.add_parser("list", parents=[parent], help="list the apps with layer, agents and description")
    ls.add_argument("--apps-dir", type=Path, default=None, help="folder holding <name>/app.toml (default: the bundled apps)")
    ls.set_defaults(func=cmd_list)
    run = inner.add_parser("run", parents=[parent], help="run one app in this process",
                           description="Run an app. Arguments after NAME go to the script (ARGS); "
                                       "--output-dir defaults to ./llmspell-output/<name>. The app's own "
                                       "config.toml is used unless -c/--config is given.",
                           epilog="example: llmspell apps run file-organizer -- --output-dir ./out")
    run.add_argument("name", metavar="NAME", help="app name (see 'llmspell apps list'), or the path of your own app "
                                                  "folder with main.lua and app.toml (e.g. ./my-app)")
    run.add_argument("--apps-dir", type=Path, default=None,
                     help="folder holding <name>/app.toml (default: the bundled apps)")
    run.add_argument("--replay", action="store_true",
                     help="offline: replay the app's recorded cassette (the bundled cassettes/<name>, or <folder>/cassettes "
                          "for your own app) with the harness routing")
    run.add_argument("--live", action="store_true", help="real provider traffic with the app's own config (the default)")
    run.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the app")
    run.set_defaults(func=cmd_run)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return EXIT_USAGE


def apps_dir(explicit: Path | None) -> Path:
    """--apps-dir, else $LLMSPELL_APPS_DIR, else ./apps when it holds an app, else the apps shipped with llmspell."""
    if explicit is not None:
        return explicit
    from llmspell.config import environment
    from llmspell.resources import apps_dir as bundled

    env = environment()
    if env.get("LLMSPELL_APPS_DIR"):
        return Path(env["LLMSPELL_APPS_DIR"])
    if any(Path("apps").glob("*/app.toml")):
        return Path("apps")
    return bundled(env)


def cmd_list(args: argparse.Namespace) -> int:
    manifest_mod = harness_module("manifest")
    ManifestError, discover = manifest_mod.ManifestError, manifest_mod.discover

    try:
        manifests = discover(apps_dir(args.apps_dir))
    except ManifestError as e:
        sys.stderr.write(f"llmspell apps: {e}\n")
        return EXIT_USAGE
    if not manifests:
        sys.stderr.write(f"llmspell apps: no apps under {apps_dir(args.apps_dir)}\n")
        return EXIT_USAGE
    width = max(len(m.name) for m in manifests)
    print(f"{'NAME':{width}}  LAYER  AGENTS  DESCRIPTION")
    for m in manifests:
        agents = f"{m.agents}{' +RAG' if m.rag else ''}"
        print(f"{m.name:{width}}  {m.layer:>5}  {agents:>6}  {m.description}")
    return EXIT_OK


def script_args(name: str, tokens: list[str]) -> list[str]:
    """The app's ARGS tokens: the user's, with --output-dir defaulting to ./llmspell-output/<name>."""
    tokens = tokens[1:] if tokens[:1] == ["--"] else list(tokens)
    if not any(t == "--output-dir" or t.startswith("--output-dir=") for t in tokens):
        tokens = ["--output-dir", str(Path("llmspell-output") / name), *tokens]
    return tokens


def _own_options(args: argparse.Namespace) -> None:
    """Take --replay / --apps-dir given after NAME (before any '--') as this command's own options."""
    rest = list(args.script_args)
    while rest and rest[0] != "--":
        if rest[0] in ("--replay", "--live"):
            setattr(args, rest.pop(0)[2:], True)
        elif rest[0] == "--apps-dir" and len(rest) > 1:
            args.apps_dir = Path(rest[1])
            del rest[:2]
        elif rest[0].startswith("--apps-dir="):
            args.apps_dir = Path(rest.pop(0).split("=", 1)[1])
        else:
            break
    args.script_args = rest


def cmd_run(args: argparse.Namespace) -> int:
    manifest_mod = harness_module("manifest")
    ManifestError, load_manifest = manifest_mod.ManifestError, manifest_mod.load_manifest
    _own_options(args)
    from llmspell.bootstrap import create_runtime
    from llmspell.script.engine import ScriptError, StreamSink

    own = "/" in args.name or args.name.startswith(".")  # a path: the user's own app folder
    try:
        manifest = load_manifest(Path(args.name) / "app.toml" if own else apps_dir(args.apps_dir) / args.name / "app.toml")
    except ManifestError as e:
        sys.stderr.write(f"llmspell apps: {e} (see 'llmspell apps list')\n")
        return EXIT_USAGE
    if args.replay and getattr(args, "live", False):
        sys.stderr.write("llmspell apps: --replay and --live exclude each other\n")
        return EXIT_USAGE
    replay: dict[str, Any] = {}
    if args.replay:
        from llmspell.providers.traffic import CASSETTE_FILE
        from llmspell.resources import cassettes_dir
        from llmspell.settings import scratch_dir

        effective_config = harness_module("profile").effective_config
        cassette = manifest.directory.resolve() / "cassettes" if own else cassettes_dir() / manifest.name
        if not (cassette / CASSETTE_FILE).is_file():
            sys.stderr.write(f"llmspell apps: no recorded traffic for {manifest.name} at {cassette}\n")
            return EXIT_USAGE
        replay = {"traffic": "replay", "cassette_dir": cassette}
        base = Path(getattr(args, "config", None) or manifest.config_path)
        args.config = str(effective_config(base, "local", scratch_dir("apps") / "config.toml"))
    if not getattr(args, "config", None):
        args.config = str(manifest.config_path)
    # the app's needs: RAG on unless the environment says otherwise (--rag wins); replay wins over --traffic
    overrides = Overrides.from_args(args, **replay)
    if manifest.rag:
        overrides = replace(overrides, defaults={"rag.enabled": True})
    config = load_config_or_exit(args, overrides)
    tokens = script_args(manifest.name, list(args.script_args))
    rt = create_runtime(config, stdout=StreamSink(sys.stdout), stderr=StreamSink(sys.stderr))
    previous = _install_sigint(rt)
    try:
        result = rt.run_file(str(manifest.main_lua), tokens)
        return int(result.exit_code or 0) if result.exit_code is not None else EXIT_OK
    except ScriptError as e:
        if e.kind == "interrupted":
            sys.stderr.write("interrupted\n")
            return EXIT_INTERRUPTED
        sys.stderr.write(f"Error: {e.full_message}\n")
        return EXIT_SCRIPT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        rt.close()


def _install_sigint(rt: Any) -> Any:
    """Ctrl-C interrupts the app (exit 130) instead of killing the process mid-write."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: rt.interrupt("interrupted"))
