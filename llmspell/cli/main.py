"""`llmspell` command line: global options, one module per command group, exit codes 0/1/2.

Each command module in COMMAND_MODULES exposes `register(subparsers, parent)`; it adds its
parser(s) with `parents=[parent]` (the global options) and sets `func=handler(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from llmspell import __version__

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: Command modules, in --help order. A module that is not present yet is skipped.
COMMAND_MODULES: tuple[str, ...] = (
    "llmspell.cli.run",
    "llmspell.cli.config_cmd",
    "llmspell.cli.kernel_cmd",
    "llmspell.cli.debug_cmd",
    "llmspell.cli.repl_cmd",
    "llmspell.cli.apps_cmd",
    "llmspell.cli.state_cmd",
    "llmspell.cli.session_cmd",
)


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and a hint line on usage errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n(run '{self.prog} --help' for the options)\n")
        raise SystemExit(EXIT_USAGE)


def global_options() -> argparse.ArgumentParser:
    """Options accepted before or after any command."""
    p = _Parser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("-c", "--config", metavar="PATH", default=argparse.SUPPRESS,
                   help="config file (default: LLMSPELL_CONFIG, ./llmspell.toml, ~/.config/llmspell/...)")
    g.add_argument("--trace", metavar="LEVEL", default=argparse.SUPPRESS,
                   help="log level or directives: off, error, warn, info, debug, trace, or 'info,llmspell.kernel=debug'")
    g.add_argument("--output", choices=("text", "json", "yaml"), default=argparse.SUPPRESS,
                   help="output format for results (default: text)")
    g.add_argument("--traffic", choices=("live", "record", "replay", "fault"), default=argparse.SUPPRESS,
                   help="how providers reach the network (default: LLMSPELL_TRAFFIC or live)")
    g.add_argument("--rag", action="store_true", default=argparse.SUPPRESS, help="enable the RAG global")
    return p


def build_parser() -> argparse.ArgumentParser:
    parent = global_options()
    parser = _Parser(
        prog="llmspell",
        description="Run Lua scripts that orchestrate LLM agents, tools, workflows, state and RAG.",
        epilog="Run 'llmspell COMMAND --help' for a command's options. Exit codes: 0 ok, 1 script error, "
               "2 usage or config error, 130 interrupted.",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"llmspell {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        mod.register(sub, parent)
    return parser


def setup_logging(args: argparse.Namespace) -> None:
    """Configure stderr logging from --trace, LLMSPELL_LOG or RUST_LOG-style directives (and LLMSPELL_OTEL)."""
    from llmspell.config import log_settings

    settings = log_settings(getattr(args, "trace", None))
    spec = settings.spec
    try:
        from llmspell.runtime.tracing import configure
    except ModuleNotFoundError:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
        return
    try:
        configure(spec)
    except ValueError as e:
        sys.stderr.write(f"llmspell: {e}\n")
        raise SystemExit(EXIT_USAGE) from None
    if settings.otel:
        from llmspell.runtime.tracing import enable_otel

        enable_otel(settings.otel)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    setup_logging(args)  # --traffic and --rag reach the configuration through load_config's overrides
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
