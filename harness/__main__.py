"""`python -m harness` / `llmspell-harness`: a thin wrapper that calls pytest with the harness plugin.

  python -m harness [run] [APP...] [--repeat N] [--memory N] [-n auto]     replay (default)
  python -m harness record [APP...]                                         cassettes from the local model
  python -m harness live [APP...] --repeat 3 --local-server                 live traffic, success rates
  python -m harness live [APP...] --base-url http://host:port/v1 [--model NAME] [--api chat]   any OpenAI-compatible server

An APP is a bundled app's name or the path of an app folder of your own (main.lua + app.toml),
e.g. `python -m harness run ./my-app`; its cassettes live in <folder>/cassettes/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

try:
    import pytest
except ModuleNotFoundError:  # the harness extra is not installed
    raise SystemExit("the llmspell harness needs pytest: pip install 'llmspell[harness]'") from None

from . import APPS_DIR, CASSETTES_DIR, REPO_ROOT, REPORTS_DIR
from .manifest import AppManifest, ManifestError, discover
from .profile import APIS, LOCAL_MODEL
from .record import LocalModelServer, ServerError
from .runner import HarnessOptions, cassette_dir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmspell-harness", description="Validate the llmspell example apps on a real kernel.",
                                epilog="Options it does not know are passed to pytest (e.g. -x, -k NAME, -v). "
                                       "An APP may be the path of your own app folder (main.lua + app.toml).")
    p.add_argument("mode", nargs="?", choices=("run", "record", "live"), default="run",
                   help="run: replay cassettes (default); record: write cassettes from the local model server "
                        "(or --base-url); live: real traffic")
    p.add_argument("apps", nargs="*", metavar="APP", help="apps to run: names or app folders (default: all bundled)")
    p.add_argument("--apps-dir", type=Path, default=APPS_DIR)
    p.add_argument("--repeat", type=int, default=None, help="repetitions per app (live default 3, else 1)")
    p.add_argument("--memory", type=int, default=0, metavar="N", help="also gate RSS growth over N runs per app")
    p.add_argument("-n", "--workers", default=None, help="pytest-xdist workers (e.g. auto)")
    p.add_argument("--report-dir", type=Path, default=REPORTS_DIR)
    p.add_argument("--cassettes", type=Path, default=CASSETTES_DIR)
    p.add_argument("--no-gates", action="store_true", help="report without failing on the gates")
    p.add_argument("--local-server", action="store_true",
                   help="live: start the local model server on a free port and route every provider to it")
    p.add_argument("--base-url", default=None, metavar="URL",
                   help="live/record: route every provider to this OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    p.add_argument("--model", default=LOCAL_MODEL, help=f"model name sent to the routed server (default {LOCAL_MODEL})")
    p.add_argument("--api", default="completions", choices=APIS,
                   help="live/record: endpoint of the routed server: completions (a base model such as gemma3-270m, "
                        "the default) or chat (an instruction-tuned model)")
    p.add_argument("--judge-model", default=None, metavar="MODEL",
                   help="judge model of `judge` checks (replaces each app's [judge] model)")
    p.add_argument("--compare", type=Path, default=None, metavar="FILE",
                   help="baseline to compare with (results.json or history record; default apps/baseline.json)")
    p.add_argument("--save-baseline", type=Path, default=None, metavar="FILE",
                   help="write this run's summary as a baseline to compare later runs with (e.g. apps/baseline.json)")
    p.add_argument("--server-python", default=os.environ.get("LLMSPELL_LIVE_PYTHON") or sys.executable,
                   help="Python with llama-cpp-python[server] and the gemma3-270m package")
    p.add_argument("--port", type=int, default=None, help="port of --local-server (default: a free one)")
    p.add_argument("--budget-factor", type=float, default=None,
                   help="scale runtime budgets (record/live on the small local model default to 3)")
    return p


def pytest_args(ns: argparse.Namespace, traffic: str, profile: str, repeat: int,
                base_url: str | None = None) -> list[str]:
    """The single pytest invocation every mode reduces to."""
    selected = discover(ns.apps_dir, ns.apps or None, ns.judge_model)
    args = ["-p", f"{__package__ or 'harness'}.plugin", "--rootdir", str(REPO_ROOT), "-p", "no:cacheprovider",
            *[str(m.directory) for m in selected],
            f"--apps-traffic={traffic}", f"--apps-profile={profile}", f"--apps-repeat={repeat}",
            f"--apps-report-dir={ns.report_dir}", f"--apps-cassettes={ns.cassettes}", f"--apps-model={ns.model}", f"--apps-api={ns.api}"]
    if base_url:
        args.append(f"--apps-base-url={base_url}")
    if ns.judge_model:
        args.append(f"--apps-judge-model={ns.judge_model}")
    if ns.compare:
        args.append(f"--apps-compare={ns.compare}")
    if ns.save_baseline:
        args.append(f"--apps-save-baseline={ns.save_baseline}")
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


def clear_recordings(ns: argparse.Namespace, selected: list[AppManifest]) -> None:
    """Remove the cassettes (app and judge) of the apps about to be recorded, so nothing stale survives."""
    opts = HarnessOptions(cassettes_dir=ns.cassettes.resolve())
    for m in selected:
        shutil.rmtree(cassette_dir(m, opts), ignore_errors=True)


def _server(ns: argparse.Namespace) -> LocalModelServer:
    server = LocalModelServer(log_path=ns.report_dir / "model-server.log", python=ns.server_python)
    if ns.port is not None:
        server.port = ns.port
    return server


def main(argv: Sequence[str] | None = None) -> int:
    _terminate_cleanly()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in ("run", "record", "live"):
        args.insert(0, "run")
    ns, unknown = _parser().parse_known_args(args)
    ns.pytest_args = unknown  # anything the harness does not know goes to pytest
    try:
        if ns.mode == "run":
            if ns.base_url or ns.local_server:
                raise ManifestError("run replays cassettes: --base-url and --local-server belong to live or record")
            return int(pytest.main(pytest_args(ns, "replay", "local", ns.repeat or 1)))
        selected = discover(ns.apps_dir, ns.apps or None, ns.judge_model)
        if ns.mode == "record":
            ns.no_gates = True
            if ns.base_url:
                clear_recordings(ns, selected)
                return int(pytest.main(pytest_args(ns, "record", "local", ns.repeat or 1, ns.base_url)))
            with _server(ns) as server:
                clear_recordings(ns, selected)  # only once the server is up
                return int(pytest.main(pytest_args(ns, "record", "local", ns.repeat or 1, server.base_url)))
        repeat = ns.repeat or 3
        if ns.local_server:
            with _server(ns) as server:
                return int(pytest.main(pytest_args(ns, "live", "none", repeat, server.base_url)))
        return int(pytest.main(pytest_args(ns, "live", "none", repeat, ns.base_url)))
    except (ManifestError, ServerError) as e:
        sys.stderr.write(f"llmspell-harness: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
