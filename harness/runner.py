"""Runs one app once on a pooled kernel: output dir, log file, ARGS, and the RunResult."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import APPS_DIR, CASSETTES_DIR, REPO_ROOT, REPORTS_DIR
from .kernel_driver import KERNEL_NAME, KernelPool, KernelSettings, KernelStartError
from .manifest import AppManifest
from .profile import LOCAL_MODEL, effective_config
from .result import RunResult

TRAFFIC_MODES = ("replay", "record", "live")


@dataclass(frozen=True)
class HarnessOptions:
    """How the harness runs the apps (set from pytest options or the CLI)."""

    traffic: str = "replay"
    profile: str = "local"
    repeat: int = 1
    memory_runs: int = 0
    gates: bool = True
    report_dir: Path = REPORTS_DIR
    cassettes_dir: Path = CASSETTES_DIR
    kernel_name: str = KERNEL_NAME
    budget_factor: float = 1.0
    base_url: str | None = None
    model: str = LOCAL_MODEL
    api: str = "completions"
    judge_model: str | None = None
    compare: Path | None = None

    def output_dir(self, app: str, label: str) -> Path:
        return self.report_dir / "runs" / app / label

    def log_path(self, app: str, label: str) -> Path:
        return self.report_dir / "logs" / f"{app}-{label}.log"


def kernel_settings(manifest: AppManifest, opts: HarnessOptions) -> KernelSettings:
    """The kernel a given app runs on: traffic mode, its cassettes, its config (with the profile)."""
    kdir = opts.report_dir / "kernels" / manifest.name
    config = effective_config(manifest.config_path, opts.profile, kdir / "config.toml", opts.base_url, opts.model,
                              opts.api)
    return KernelSettings(traffic=opts.traffic, cassette_dir=cassette_dir(manifest, opts),
                          config_path=config, state_dir=kdir / "state", cwd=_cwd(manifest),
                          allowed_paths=(opts.report_dir,), rag=manifest.rag, kernel_name=opts.kernel_name)


def is_bundled(manifest: AppManifest) -> bool:
    """True for the apps shipped in this repository's apps/ folder."""
    try:
        manifest.directory.resolve().relative_to(APPS_DIR.resolve())
    except ValueError:
        return False
    return True


def cassette_dir(manifest: AppManifest, opts: HarnessOptions) -> Path:
    """The app's cassette folder: cassettes/<name> for bundled apps (or under --apps-cassettes), else <app>/cassettes."""
    if is_bundled(manifest) or opts.cassettes_dir != CASSETTES_DIR:
        return opts.cassettes_dir / manifest.name
    return manifest.directory.resolve() / "cassettes"


def _cwd(manifest: AppManifest) -> Path:
    """Where the kernel runs: the repository for the bundled apps, the app's own folder for a user's app."""
    try:
        manifest.directory.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return manifest.directory.resolve()
    return REPO_ROOT


def app_args(manifest: AppManifest, output_dir: Path) -> list[str]:
    """The script arguments of one run: the output directory, then the app's own arguments."""
    return ["--output-dir", str(output_dir), *manifest.args]


def run_app(manifest: AppManifest, repetition: int, opts: HarnessOptions, pool: KernelPool,
            label: str | None = None) -> RunResult:
    """Execute the app once; every failure (even a kernel that will not start) becomes a RunResult."""
    label = label or f"r{repetition}"
    out_dir = opts.output_dir(manifest.name, label)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    log_path = opts.log_path(manifest.name, label)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    budget = manifest.runtime_seconds * opts.budget_factor
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"[harness] app {manifest.name} repetition {repetition} traffic {opts.traffic} "
                  f"profile {opts.profile} budget {budget:g} s\n[harness] output dir {out_dir}\n")
        started = time.monotonic()
        try:
            driver = pool.get(manifest.name, kernel_settings(manifest, opts))
        except KernelStartError as e:
            log.write(f"[harness] {e}\n")
            result = RunResult(app=manifest.name, repetition=repetition, status="harness_error",
                               wall_s=round(time.monotonic() - started, 3), output_dir=str(out_dir),
                               error_value=str(e), traffic=opts.traffic)
        else:
            log.write(f"[harness] kernel pid {driver.pid}\n{'-' * 72}\n")
            log.flush()
            result = driver.run(manifest.name, repetition, manifest.main_lua.read_text(encoding="utf-8"),
                                app_args(manifest, out_dir), out_dir, log, budget)
        result.log_path = str(log_path)
        log.write(f"{'-' * 72}\n[harness] status {result.status} wall {result.wall_s:.2f} s "
                  f"rss {result.rss_bytes / 2**20:.1f} MB\n[harness] figures "
                  f"{ {k: v for k, v in result.figures.items() if k != 'exchanges'} }\n")
        for i, ex in enumerate(result.figure("exchanges", []) or [], 1):
            rec = ex.get("recorded_latency_ms")
            log.write(f"[harness] exchange {i}: {ex.get('traffic')} {ex.get('endpoint')} {ex.get('kind')}"
                      f"{': ' + str(ex.get('reason')) if ex.get('reason') else ''}; {ex.get('latency_ms', 0):.0f} ms "
                      f"(recorded: {'not in cassette' if rec is None else f'{rec:.0f} ms'}); "
                      f"reply: {str(ex.get('reply_excerpt', ''))[:100]!r}\n")
        if result.error:
            log.write(f"[harness] error {result.error}\n")
    return result
