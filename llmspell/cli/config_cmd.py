"""`llmspell config init|show|validate|trust`: starter file, effective config, checks, trusting a cwd file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmspell.config import ConfigError, Overrides, load_config, to_toml

EXIT_OK, EXIT_USAGE = 0, 2

STARTER = """\
# llmspell configuration (see lua-api.md §20). Every key below shows its default;
# uncomment and change what you need. Relative paths are resolved against this file's directory.

[providers]
default_provider = "openai"          # used for bare model names such as "gpt-4o-mini"
# default_model = "openai/gpt-4o-mini"

# [providers.openai]
# api_key_env = "OPENAI_API_KEY"     # the key is read from this variable, never stored here
# timeout_seconds = 120
# max_retries = 2

# A local OpenAI-compatible server (llama.cpp, vLLM, Ollama's /v1...): no key needed on loopback.
# [providers.local]
# provider_type = "openai"
# base_url = "http://127.0.0.1:8080/v1"
# default_model = "local"

[runtime]
script_timeout_seconds = 0           # 0 = no whole-script limit

[runtime.security]
allow_file_access = true             # false disables the file tools (not Lua's io library)
allow_network_access = true          # false disables the network tools (not providers)
allow_process_spawn = false

[engines.lua]
max_memory_bytes = 0                 # Lua heap limit; 0 = none

[debug]
enabled = true
level = "info"                       # trace, debug, info, warn, error
output = "stderr"                    # or a file path

[state]
backend = "sqlite"                   # sqlite, memory or postgres
# path = "data/state.sqlite3"        # default: $XDG_DATA_HOME/llmspell/state.sqlite3

[sessions]
enabled = true

[hooks]
enabled = true
timeout_ms = 5000

[events]
enabled = true
buffer_size = 1000

[workflows]
step_timeout_ms = 120000
max_concurrent = 8
error_strategy = "fail_fast"         # fail_fast, continue or retry

[tools]
enabled = true

[tools.file_operations]
# Where agents' file tools may read and write. Without this key the default is the working
# directory plus the temp directory; this starter narrows it to ./workspace next to this file
# (created by `config init`). Add directories as needed; see docs/SECURITY.md.
allowed_paths = ["workspace"]

[rag]
enabled = false                      # true creates the RAG global (or LLMSPELL_RAG_ENABLED=1, --rag)

[rag.embedding]
provider = "local"
model = "all-MiniLM-L6-v2"
dimensions = 384
"""


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    """Add `config` with its init, show, validate and trust subcommands."""
    p = sub.add_parser("config", parents=[parent], help="create, show, validate or trust the configuration",
                       description="Work with llmspell.toml (discovery: -c, LLMSPELL_CONFIG, ./llmspell.toml, "
                                   "~/.llmspell.toml, ~/.config/llmspell.toml, $XDG_CONFIG_HOME/llmspell/config.toml).")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", parser_class=type(p))
    i = csub.add_parser("init", parents=[parent], help="write a commented starter llmspell.toml",
                        description="Write a commented starter config file.",
                        epilog="example: llmspell config init ./llmspell.toml")
    i.add_argument("path", nargs="?", default="llmspell.toml", metavar="PATH",
                   help="where to write it (default: ./llmspell.toml)")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=cmd_init)
    s = csub.add_parser("show", parents=[parent], help="print the effective configuration (secrets masked)",
                        description="Print the effective configuration: file, environment and defaults, "
                                    "in the canonical layout, with secrets shown as ***.",
                        epilog="example: llmspell config show --format json")
    s.add_argument("--format", choices=("toml", "json", "yaml"), default=None,
                   help="output format (default: toml, or the global --output json/yaml)")
    s.add_argument("key", nargs="?", default=None, metavar="KEY", help="only this dotted key, e.g. providers.openai")
    s.set_defaults(func=cmd_show)
    v = csub.add_parser("validate", parents=[parent], help="check a config file (exit 0 ok, 2 invalid)",
                        description="Load and check a config file; print problems and warnings.",
                        epilog="example: llmspell config validate ./llmspell.toml")
    v.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="the file (default: the one -c or discovery finds)")
    v.set_defaults(func=cmd_validate)
    t = csub.add_parser("trust", parents=[parent],
                        help="allow a working-directory llmspell.toml to route keys and choose where files go",
                        description="Record the SHA-256 of a config file found in the working directory, so it may "
                                    "name key sources (api_key_env), send keys from the environment to "
                                    "non-default hosts, widen the file tools' allowed_paths and put the files "
                                    "llmspell writes (state, RAG, event export, Debug output) outside the working, "
                                    "temp and data directories. Any later edit makes it untrusted again. Hashes are "
                                    "kept in "
                                    "$XDG_CONFIG_HOME/llmspell/trusted-configs.json (~/.config/llmspell/...).",
                        epilog="example: llmspell config trust ./llmspell.toml")
    t.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="the file (default: the one found in the working directory)")
    t.add_argument("--remove", action="store_true", help="forget the file instead of trusting it")
    t.set_defaults(func=cmd_trust)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return EXIT_USAGE


def cmd_init(args: argparse.Namespace) -> int:
    """Write the starter file; refuse to overwrite without --force."""
    path = Path(args.path)
    if path.is_dir():
        path = path / "llmspell.toml"
    if path.exists() and not args.force:
        sys.stderr.write(f"llmspell: {path} already exists (use --force to overwrite it)\n")
        return EXIT_USAGE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STARTER, encoding="utf-8")
        (path.parent / "workspace").mkdir(exist_ok=True)
    except OSError as e:
        sys.stderr.write(f"llmspell: cannot write {path}: {e.strerror}\n")
        return EXIT_USAGE
    sys.stdout.write(f"wrote {path}\n")
    return EXIT_OK


def _load(path: str | None, args: argparse.Namespace | None = None, *, inspect: bool = False) -> Any:
    """The configuration, or exit 2 with the error; `inspect` (show, validate) only warns about an untrusted file."""
    try:
        return load_config(path, overrides=Overrides.from_args(args) if args is not None else None,
                           refuse_untrusted=not inspect)
    except ConfigError as e:
        sys.stderr.write(f"llmspell: {e}\n")
        raise SystemExit(EXIT_USAGE) from None


def cmd_show(args: argparse.Namespace) -> int:
    """Print the effective configuration with secrets masked."""
    cfg = _load(getattr(args, "config", None), args, inspect=True)
    for w in cfg.warnings:
        sys.stderr.write(f"warning: {w}\n")
    data: Any = cfg.masked()
    if args.key:
        data = cfg.get(args.key)
        if data is None:
            sys.stderr.write(f"llmspell: no config key {args.key}\n")
            return EXIT_USAGE
        from llmspell.config import mask_secrets

        data = mask_secrets(data, args.key.rsplit(".", 1)[-1])
    fmt = args.format or {"json": "json", "yaml": "yaml"}.get(getattr(args, "output", "text"), "toml")
    source = str(cfg.path) if cfg.path is not None else "built-in defaults"
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    elif fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=True, allow_unicode=True))
    else:
        sys.stdout.write(f"# effective configuration (from {source}, environment and defaults)\n")
        if isinstance(data, dict):
            sys.stdout.write(to_toml(data) + "\n")
        else:
            from llmspell.config import toml_literal

            sys.stdout.write(f"{args.key.rsplit('.', 1)[-1]} = {toml_literal(data)}\n")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the file loads (warnings are printed), 2 when it does not."""
    path = args.path or getattr(args, "config", None)
    cfg = _load(path, args, inspect=True)
    for w in cfg.warnings:
        sys.stderr.write(f"warning: {w}\n")
    where = str(cfg.path) if cfg.path is not None else "no config file found; built-in defaults"
    sys.stdout.write(f"config {where}: ok\n")
    return EXIT_OK


def cmd_trust(args: argparse.Namespace) -> int:
    """Trust (or --remove) a config file: store its hash in the user config directory."""
    from llmspell.config import discover_config
    from llmspell.providers.trust import trust, trust_store

    if args.path:
        path = Path(args.path)
        if path.is_dir():
            path = path / "llmspell.toml"
    else:
        found, how = discover_config()
        if found is None or how != "cwd":
            sys.stderr.write("llmspell: no llmspell.toml in the working directory (give the PATH to trust)\n")
            return EXIT_USAGE
        path = found
    if not path.is_file():
        sys.stderr.write(f"llmspell: config file {path} not found\n")
        return EXIT_USAGE
    env = _load(str(path)).env  # a file that does not load is not worth trusting
    try:
        h = trust(path, env, remove=args.remove)
    except OSError as e:
        sys.stderr.write(f"llmspell: cannot update {trust_store(env)}: {e.strerror or e}\n")
        return EXIT_USAGE
    verb = "no longer trusted" if args.remove else f"trusted (sha256 {h[:16]}…)"
    sys.stdout.write(f"{path.resolve()}: {verb}; recorded in {trust_store(env)}\n")
    return EXIT_OK
