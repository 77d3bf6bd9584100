"""Run the locust scenarios headless and bounded, check the load gates, write reports/load/.

  python -m benchmarks.load [--duration 60s] [--users 8,20] [--kernels-scenario] [--peer python3]

Gate (targets.md): 0 failures, no lost replies, p99 <= 50 ms. Exit 1 when a gate fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
P99_GATE_MS = 50.0


@dataclass
class LoadResult:
    """One scenario's aggregate figures."""

    scenario: str
    kernel: str
    users: int
    kernels: int
    duration: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float
    lost: int
    passed: bool
    gated: bool


def _run(scenario: str, kernel: str, users: int, kernels: int, duration: str, out: Path, gated: bool,
         processes: int) -> LoadResult:
    prefix = out / scenario
    summary = out / f"{scenario}.summary.json"
    for old in out.glob(f"{scenario}.summary.json.*"):
        old.unlink()
    managers = _start_kernels(kernel, kernels)
    try:
        env = dict(os.environ, LOAD_KERNEL=kernel, LOAD_KERNELS=str(kernels), LOAD_SUMMARY=str(summary),
                   LOAD_CONNECTION_FILE=os.pathsep.join(km.connection_file for km in managers))
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
               "-r", str(users), "-t", duration, "--only-summary", "--csv", str(prefix),
               "--html", f"{prefix}.html", "-s", "5"]
        if processes > 1:
            cmd += ["--processes", str(processes)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=_seconds(duration) + 180)
    finally:
        for km in managers:
            km.shutdown_kernel(now=False)
    (out / f"{scenario}.log").write_text(proc.stdout + proc.stderr)
    agg = _aggregate(Path(f"{prefix}_stats.csv"))
    tallies = [json.loads(p.read_text()) for p in out.glob(f"{scenario}.summary.json.*")]
    lost = sum(t["lost"] for t in tallies) if tallies else -1
    failures = int(agg.get("Failure Count", 0) or 0)
    p99 = float(agg.get("99%", 0) or 0)
    passed = failures == 0 and lost == 0 and p99 <= P99_GATE_MS and int(agg.get("Request Count", 0) or 0) > 0
    return LoadResult(scenario=scenario, kernel=kernel, users=users, kernels=kernels, duration=duration,
                      requests=int(agg.get("Request Count", 0) or 0), failures=failures,
                      rps=float(agg.get("Requests/s", 0) or 0), p50_ms=float(agg.get("50%", 0) or 0),
                      p99_ms=p99, lost=lost, passed=passed, gated=gated)


def _start_kernels(kernel: str, n: int) -> list[Any]:
    """Start `n` kernels from their installed kernelspec (outside locust, whose gevent loop cannot)."""
    from jupyter_client.manager import KernelManager

    managers = []
    for _ in range(n):
        km = KernelManager(kernel_name=kernel)
        km.start_kernel()
        managers.append(km)
    return managers


def _aggregate(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                return row
    return {}


def _seconds(duration: str) -> int:
    total, num = 0, ""
    for ch in duration:
        if ch.isdigit():
            num += ch
        else:
            total += int(num or 0) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total + int(num or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", default="60s", help="run time per scenario (locust syntax, default 60s)")
    ap.add_argument("--users", default="8,20", help="comma-separated user counts on one kernel (default 8,20)")
    ap.add_argument("--kernels", type=int, default=4,
                    help="N for the one-client-per-kernel scenario (0 skips it; default 4)")
    ap.add_argument("--peer", default="", help="also measure this kernelspec at the first user count (e.g. python3)")
    ap.add_argument("--processes", type=int, default=2,
                    help="locust processes generating load on one kernel (default 2: one Python process "
                         "saturates a core before the kernel does)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "load"), help="output directory")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    users = [int(u) for u in args.users.split(",") if u]
    results: list[LoadResult] = []
    p = args.processes
    for u in users:
        results.append(_run(f"llmspell_{u}u_1k", "llmspell", u, 1, args.duration, out, gated=True, processes=p))
    if args.kernels > 0:
        k = args.kernels
        # one user per kernel: a single locust process keeps the round-robin user -> kernel mapping exact
        results.append(_run(f"llmspell_{k}u_{k}k", "llmspell", k, k, args.duration, out, gated=True, processes=1))
    if args.peer:
        results.append(_run(f"{args.peer}_{users[0]}u_1k", args.peer, users[0], 1, args.duration, out,
                            gated=False, processes=p))
    (out / "load.json").write_text(json.dumps({"p99_gate_ms": P99_GATE_MS,
                                               "results": [asdict(r) for r in results]}, indent=2))
    ok = True
    for r in results:
        mark = ("PASS" if r.passed else "FAIL") if r.gated else "peer"
        print(f"{mark:4} {r.scenario:24} {r.requests:7d} req  {r.rps:8.1f} req/s  p50 {r.p50_ms:5.1f} ms  "
              f"p99 {r.p99_ms:6.1f} ms  failures {r.failures}  lost {r.lost}")
        ok &= r.passed or not r.gated
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
