"""Run the benchmark gates: pytest-benchmark without xdist, compared with the stored baseline when one exists.

  python -m benchmarks.run [pytest args...]

The baseline is the newest saved run for this machine kind under benchmarks/baselines/ (pytest-benchmark's
own storage, committed). A median more than three times the baseline's fails (`median:200%`); without a
baseline the run only checks the absolute gates and saves itself as the baseline. Refresh it on a quiet
machine with `python -m benchmarks.run --benchmark-save=baseline` and commit the new file.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STORAGE = HERE / "baselines"
COMPARE_FAIL = "median:200%"


def machine_dir() -> Path:
    """pytest-benchmark's storage folder for this interpreter and platform."""
    impl = platform.python_implementation()
    version = ".".join(platform.python_version_tuple()[:2])
    bits = platform.architecture()[0]
    return STORAGE / f"{platform.system()}-{impl}-{version}-{bits}"


def pytest_args(extra: list[str]) -> list[str]:
    args = [str(HERE), "-p", "no:xdist", "--benchmark-only", f"--benchmark-storage=file://{STORAGE}"]
    if any(machine_dir().glob("*.json")):
        args += ["--benchmark-compare", f"--benchmark-compare-fail={COMPARE_FAIL}"]
    else:
        print(f"benchmarks: no baseline in {machine_dir()}; checking absolute gates only and saving this run "
              "as the baseline", file=sys.stderr)
        args += ["--benchmark-save=baseline"]
    return args + extra


def main(argv: list[str] | None = None) -> int:
    return int(pytest.main(pytest_args(list(sys.argv[1:] if argv is None else argv))))


if __name__ == "__main__":
    raise SystemExit(main())
