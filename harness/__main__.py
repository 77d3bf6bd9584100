"""`python -m harness` / `llmspell-harness`: a thin wrapper that calls pytest with the harness plugin.

  python -m harness [run] [APP...] [--repeat N] [--memory N] [-n auto]   replay (default)
  python -m harness record [APP...]                                       cassettes from the local model
  python -m harness live [APP...] --repeat 3 [--local-server]             live traffic, success rates
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness import APPS_DIR, CASSETTES_DIR, REPO_ROOT, REPORTS_DIR
from harness.manifest import ManifestError, discover
from harness.profile import LOCAL_PORT
from harness.record import LocalModelServer, ServerError, clear_cassettes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmspell-harness", description="Validate the llmspell example apps on a real kernel.",
                                epilog="Options it does not know are passed to pytest (e.g. -x, -k NAME, -v).")
    p.add_argument("mode", nargs="?", choices=("run", "record", "live"), default="run",
                   help="run: replay cassettes (default); record: write cassettes from the local model server; "
                        "live: real traffic")
    p.add_argument("apps", nargs="*", metavar="APP", help="apps to run (default: all)")
    p.add_argument("--apps-dir", type=Path, default=APPS_DIR)
    p.add_argument("--repeat", type=int, default=None, help="repetitions per app (live default 3, else 1)")
    p.add_argument("--memory", type=int, default=0, metavar="N", help="also gate RSS growth over N runs per app")
    p.add_argument("-n", "--workers", default=None, help="pytest-xdist workers (e.g. auto)")
    p.add_argument("--report-dir", type=Path, default=REPORTS_DIR)
    p.add_argument("--cassettes", type=Path, default=CASSETTES_DIR)
    p.add_argument("--no-gates", action="store_true", help="report without failing on the targets.md gates")
    p.add_argument("--local-server", action="store_true", help="live: start the local model server and route to it")
    p.add_argument("--server-python", default=os.environ.get("LLMSPELL_LIVE_PYTHON") or sys.executable,
                   help="Python with llama-cpp-python[server] and the gemma3-270m package")
    p.add_argument("--port", type=int, default=LOCAL_PORT, help=argparse.SUPPRESS)
    p.add_argument("--budget-factor", type=float, default=None,
                   help="scale runtime budgets (record/live on the small local model default to 3)")
    return p


def pytest_args(ns: argparse.Namespace, traffic: str, profile: str, repeat: int) -> list[str]:
    """The single pytest invocation every mode reduces to."""
    selected = discover(ns.apps_dir, ns.apps or None)
    args = ["-p", "harness.plugin", "--rootdir", str(REPO_ROOT), "-p", "no:cacheprovider",
            *[str(m.directory) for m in selected],
            f"--apps-traffic={traffic}", f"--apps-profile={profile}", f"--apps-repeat={repeat}",
            f"--apps-report-dir={ns.report_dir}", f"--apps-cassettes={ns.cassettes}"]
    if ns.memory:
        args.append(f"--apps-memory={ns.memory}")
    if ns.no_gates:
        args.append("--apps-no-gates")
    factor = ns.budget_factor if ns.budget_factor is not None else (1.0 if traffic == "replay" else 3.0)
    args.append(f"--apps-budget-factor={factor}")
    if ns.workers:
        args += ["-n", str(ns.workers), "--dist", "loadfile"]
    return args + [a for a in getattr(ns, "pytest_args", []) if a != "--"]


def _terminate_cleanly() -> None:
    """SIGTERM unwinds like Ctrl-C, so the model server and the kernels are stopped, not orphaned."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    _terminate_cleanly()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in ("run", "record", "live"):
        args.insert(0, "run")
    ns, unknown = _parser().parse_known_args(args)
    ns.pytest_args = unknown  # anything the harness does not know goes to pytest
    try:
        if ns.mode == "run":
            return int(pytest.main(pytest_args(ns, "replay", "local", ns.repeat or 1)))
        if ns.mode == "record":
            selected = [m.name for m in discover(ns.apps_dir, ns.apps or None)]
            ns.no_gates = True
            with LocalModelServer(log_path=ns.report_dir / "model-server.log", port=ns.port, python=ns.server_python):
                clear_cassettes(ns.cassettes, selected)  # only once the server is up
                return int(pytest.main(pytest_args(ns, "record", "local", ns.repeat or 1)))
        repeat = ns.repeat or 3
        if ns.local_server:
            with LocalModelServer(log_path=ns.report_dir / "model-server.log", port=ns.port, python=ns.server_python):
                return int(pytest.main(pytest_args(ns, "live", "local", repeat)))
        return int(pytest.main(pytest_args(ns, "live", "none", repeat)))
    except (ManifestError, ServerError) as e:
        sys.stderr.write(f"llmspell-harness: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
