"""`llmspell repl [--connect FILE] [--history FILE]`: the interactive Lua REPL."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from llmspell.cli.common import load_config_or_exit

EXIT_OK, EXIT_USAGE = 0, 2


def default_history() -> str:
    """The REPL's history file (`llmspell.settings.repl_history_file`: <data dir>/repl_history)."""
    from llmspell.config import environment
    from llmspell.settings import repl_history_file

    return str(repl_history_file(environment()))


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("repl", parents=[parent], help="interactive Lua REPL (local, or on a running kernel)",
                       description="Interactive Lua REPL with history, multi-line input, tab completion, "
                                   "dot commands (.help) and debugger commands (break, step, ...).",
                       epilog="example: llmspell repl --connect ~/.local/share/jupyter/runtime/kernel-1.json")
    p.add_argument("--connect", metavar="CONNECTION_FILE", default=None,
                   help="run input on the kernel of this connection file instead of in-process")
    p.add_argument("--history", metavar="FILE", default=None,
                   help=f"history file (default {default_history()}; 'none' keeps no history)")
    p.set_defaults(func=cmd_repl)


def cmd_repl(args: argparse.Namespace) -> int:
    from llmspell.repl.app import run_repl
    from llmspell.repl.backends import KernelBackend, LocalBackend

    def out(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def err(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    history = args.history or default_history()
    if history.lower() == "none":
        history = None
    backend: Any
    if args.connect:
        if not os.path.exists(args.connect):
            sys.stderr.write(f"llmspell repl: no connection file {args.connect}\n")
            return EXIT_USAGE
        try:
            backend = KernelBackend(args.connect, out, err)
        except TimeoutError as e:
            sys.stderr.write(f"llmspell repl: the kernel did not answer: {e}\n")
            return EXIT_USAGE
        except (OSError, ValueError, TypeError) as e:
            sys.stderr.write(f"llmspell repl: cannot read connection file {args.connect}: {e}\n")
            return EXIT_USAGE
    else:
        backend = LocalBackend(load_config_or_exit(args), out, err)
    return run_repl(backend, history_file=history, write=out)
