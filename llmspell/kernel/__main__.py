"""`python -m llmspell.kernel -f CONNECTION_FILE`: the process a kernelspec launches."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llmspell.kernel", description="Run the llmspell Jupyter kernel.")
    p.add_argument("-f", "--connection-file", dest="connection_file", default=None,
                   help="connection file; read when it exists, else written with free ports and a new key")
    p.add_argument("--ip", default=None, help="address to bind when writing a new connection file")
    p.add_argument("--port", type=int, default=0,
                   help="first of five consecutive ports when writing a new connection file (0: any free)")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                   help="exit after this long without a request (default: [kernel] idle_timeout_seconds)")
    p.add_argument("-c", "--config", default=None, help="llmspell config file")
    p.add_argument("--trace", default=None, help="log level or directives (default: LLMSPELL_LOG or warn)")
    return p


def _setup_logging(spec: str | None) -> None:
    from llmspell.config import log_settings

    spec = log_settings(spec).spec  # --trace, else LLMSPELL_LOG (the kernel process's environment), else warn
    try:
        from llmspell.runtime.tracing import configure
    except ModuleNotFoundError:
        level = {"trace": "DEBUG", "warn": "WARNING", "off": "CRITICAL"}.get(spec.lower(), spec.upper())
        logging.basicConfig(level=getattr(logging, level, logging.WARNING), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
        return
    configure(spec)


def main(argv: Sequence[str] | None = None) -> int:
    # Launchers may append their own extra arguments (jupyter run appends the file names): ignore them.
    args, extra = build_parser().parse_known_args(argv)
    _setup_logging(args.trace)
    if extra:
        logging.getLogger("llmspell.kernel").info("ignored extra kernel arguments: %s", extra)
    from llmspell.config import ConfigError, load_config
    from llmspell.kernel.kernel import Kernel

    try:
        config = load_config(args.config)
    except ConfigError as e:
        sys.stderr.write(f"llmspell kernel: {e}\n")
        return 2
    import zmq

    try:
        kernel = Kernel(args.connection_file, config=config, idle_timeout=args.idle_timeout,
                        ip=args.ip, port=args.port, watch_parent=True)
    except (OSError, ValueError, TypeError, KeyError) as e:
        sys.stderr.write(f"llmspell kernel: cannot use connection file {args.connection_file}: {e}\n")
        return 2
    except zmq.ZMQError as e:
        sys.stderr.write(f"llmspell kernel: cannot bind the kernel's sockets: {e}\n")
        return 2
    kernel.start()
    return kernel.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
