"""pytest plugin: each app x repetition is a test item; the gates (harness/gates.py) are checked at the end.

Use: `pytest -p harness.plugin apps/ [--apps-traffic replay] [--apps-repeat N] [-n auto]`
(`-p llmspell_harness.plugin` once installed: the wheel installs the harness under that name).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.reports import TestReport

from . import APPS_DIR, CASSETTES_DIR, REPORTS_DIR, history
from .gates import MEMORY_GROWTH_GATE, Gate, evaluate, memory_growth, outcome, success_rates, wilson
from .grader import Grader
from .judge import Verdict, judge
from .kernel_driver import KERNEL_NAME, KernelPool
from .manifest import AppManifest, ManifestError, load_manifest
from .profile import APIS, LOCAL_MODEL, PROFILES
from .report import Entry, Suite, results_dict, write_reports
from .result import RunResult
from .runner import TRAFFIC_MODES, HarnessOptions, cassette_dir, kernel_settings, run_app

_RUN_KEY, _MEMORY_KEY = "llmspell_run", "llmspell_memory"
#: The committed baseline the report compares with when --apps-compare is not given (if the file exists).
DEFAULT_BASELINE = APPS_DIR / "baseline.json"
_POOL = KernelPool()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("llmspell-apps", "llmspell application harness")
    g.addoption("--apps-traffic", choices=TRAFFIC_MODES, default="replay",
                help="provider traffic of the kernels: replay (default), record or live")
    g.addoption("--apps-profile", choices=tuple(PROFILES), default=None,
                help="config laid over each app's config.toml (default: local for replay/record, none for live)")
    g.addoption("--apps-repeat", type=int, default=1, metavar="N", help="run every app N times")
    g.addoption("--apps-memory", type=int, default=0, metavar="N",
                help="also run each app N times on one kernel and gate its RSS growth")
    g.addoption("--apps-memory-apps", default="", metavar="NAMES",
                help="comma-separated apps that get the memory runs (default: every collected app)")
    g.addoption("--apps-no-gates", action="store_true", help="report success rates without failing on gates")
    g.addoption("--apps-report-dir", default=str(REPORTS_DIR), help="where index.html, results.json and logs go")
    g.addoption("--apps-cassettes", default=str(CASSETTES_DIR), help="cassette root (one folder per app)")
    g.addoption("--apps-kernel", default=KERNEL_NAME, help="kernelspec name to start")
    g.addoption("--apps-budget-factor", type=float, default=1.0,
                help="multiply every app's runtime budget (e.g. for a slow local model)")
    g.addoption("--apps-base-url", default=None, metavar="URL",
                help="route every provider of every app to this OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    g.addoption("--apps-model", default=LOCAL_MODEL, metavar="NAME",
                help=f"model name sent to the routed server (default {LOCAL_MODEL})")
    g.addoption("--apps-api", default="completions", choices=APIS,
                help="endpoint of the routed server: completions (a base model, the default) or chat")
    g.addoption("--apps-judge-model", default=None, metavar="MODEL",
                help="judge model for `judge` checks (e.g. openai/gpt-4o-mini), replacing each app's [judge] model")
    g.addoption("--apps-compare", default=None, metavar="FILE",
                help="baseline to compare with (a results.json or history record); default apps/baseline.json if present")
    g.addoption("--apps-save-baseline", default=None, metavar="FILE",
                help="write this run's summary as a baseline file (commit it, e.g. as apps/baseline.json)")


def options(config: pytest.Config) -> HarnessOptions:
    """The harness options of this pytest session."""
    traffic = config.getoption("apps_traffic")
    profile = config.getoption("apps_profile") or ("none" if traffic == "live" else "local")
    repeat = int(config.getoption("apps_repeat"))
    if repeat < 1:
        raise pytest.UsageError("--apps-repeat must be at least 1")
    return HarnessOptions(traffic=traffic, profile=profile, repeat=repeat,
                          memory_runs=int(config.getoption("apps_memory")),
                          gates=not config.getoption("apps_no_gates"),
                          report_dir=Path(config.getoption("apps_report_dir")).resolve(),
                          cassettes_dir=Path(config.getoption("apps_cassettes")).resolve(),
                          kernel_name=config.getoption("apps_kernel"),
                          budget_factor=float(config.getoption("apps_budget_factor")),
                          base_url=config.getoption("apps_base_url"), model=config.getoption("apps_model"),
                          api=config.getoption("apps_api"),
                          judge_model=config.getoption("apps_judge_model"),
                          compare=Path(config.getoption("apps_compare")) if config.getoption("apps_compare") else None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llmspell_app(name): an example-app run of the harness")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Collector(config), "llmspell-apps-collector")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == "app.toml" and (file_path.parent / "main.lua").exists():
        return AppFile.from_parent(parent, path=file_path)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    _POOL.close()


class ManifestCollectError(Exception):
    """A malformed app.toml, reported as a collection error with the manifest's own message."""


class AppFile(pytest.File):
    """One apps/<name>/app.toml: yields a run item per repetition (and the memory item)."""

    def collect(self) -> Iterator[pytest.Item]:
        opts = options(self.config)
        try:
            manifest = load_manifest(self.path, opts.judge_model)
        except ManifestError as e:
            raise ManifestCollectError(str(e)) from None
        for rep in range(1, opts.repeat + 1):
            item = AppRun.from_parent(self, name=f"{manifest.name}[{rep}]", manifest=manifest, repetition=rep)
            item.add_marker(pytest.mark.llmspell_app(manifest.name))
            item.add_marker(pytest.mark.timeout(manifest.runtime_seconds * opts.budget_factor + 120))
            yield item
        chosen = [n.strip() for n in str(self.config.getoption("apps_memory_apps")).split(",") if n.strip()]
        if opts.memory_runs and (not chosen or manifest.name in chosen):
            mem = AppMemory.from_parent(self, name=f"{manifest.name}[memory x{opts.memory_runs}]", manifest=manifest)
            mem.add_marker(pytest.mark.timeout(opts.memory_runs * (manifest.runtime_seconds + 30) + 120))
            yield mem

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if excinfo.errisinstance(ManifestCollectError):
            return f"malformed app.toml: {excinfo.value}"
        return super().repr_failure(excinfo)


class AppRunFailed(AssertionError):
    """A run that missed one of its app.toml declarations."""


class AppRun(pytest.Item):
    """One execution of an app on its kernel, judged against its app.toml."""

    def __init__(self, *, manifest: AppManifest, repetition: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.manifest = manifest
        self.repetition = repetition
        self.result: RunResult | None = None

    def runtest(self) -> None:
        opts = options(self.config)
        result = run_app(self.manifest, self.repetition, opts, _POOL)
        grader = None
        if self.manifest.judge_model:
            grader = Grader(self.manifest.judge_model, kernel_settings(self.manifest, opts).config_path, opts.traffic,
                            cassette_dir(self.manifest, opts))
        verdict = judge(self.manifest, result, opts.budget_factor, grader)
        self.result = result
        self.user_properties.append((_RUN_KEY, json.dumps({
            "manifest": str(self.manifest.directory / "app.toml"), "run": result.to_dict(),
            "verdict": verdict.to_dict()})))
        if not verdict.passed:
            raise AppRunFailed("\n".join(verdict.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if not excinfo.errisinstance(AppRunFailed):
            return super().repr_failure(excinfo)
        lines = [f"app '{self.manifest.name}' run {self.repetition} failed its app.toml checks:"]
        lines += [f"  assert {f}" for f in str(excinfo.value).splitlines()]
        if self.result is not None:
            lines.append(f"  log: {self.result.log_path}")
            tail = self.result.stderr.strip().splitlines()[-8:]
            lines += [f"  stderr| {ln}" for ln in tail]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"app {self.manifest.name} run {self.repetition}"


class AppMemory(pytest.Item):
    """Runs an app many times on one kernel and gates the RSS growth after the warm-up runs."""

    def __init__(self, *, manifest: AppManifest, **kw: Any) -> None:
        super().__init__(**kw)
        self.manifest = manifest

    def runtest(self) -> None:
        opts = options(self.config)
        rss: list[int] = []
        for i in range(1, opts.memory_runs + 1):
            result = run_app(self.manifest, i, opts, _POOL, label=f"mem{i}")
            if result.status != "ok":
                raise AppRunFailed(f"memory run {i} failed: {result.error} (log: {result.log_path})")
            rss.append(result.rss_bytes)
        self.user_properties.append((_MEMORY_KEY, json.dumps({"app": self.manifest.name, "rss": rss})))
        growth = memory_growth(rss)
        if growth is not None:
            assert growth <= MEMORY_GROWTH_GATE, (
                f"RSS grew {growth / 2**20:.2f} MB after the warm-up runs (gate {MEMORY_GROWTH_GATE / 2**20:g} MB)")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"app {self.manifest.name} memory"


class _Collector:
    """Controller-side: gathers every judged run (also from xdist workers), gates, progress, report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.entries: list[Entry] = []
        self.memory: dict[str, list[int]] = {}
        self.gates: list[Gate] = []
        self.report_paths: tuple[Path, Path] | None = None
        self.started = time.time()
        self.total = 0
        self._manifests: dict[str, AppManifest] = {}
        self._regressions: list[history.Regression] = []

    def _manifest(self, path: str) -> AppManifest:
        if path not in self._manifests:
            self._manifests[path] = load_manifest(Path(path), options(self.config).judge_model)
        return self._manifests[path]

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == _RUN_KEY:
                data = json.loads(str(value))
                run = RunResult.from_dict(data["run"])
                verdict = Verdict.from_dict(data["verdict"])
                self.entries.append(Entry(self._manifest(data["manifest"]), run, verdict))
                self._progress(run, verdict)
            elif key == _MEMORY_KEY:
                data = json.loads(str(value))
                self.memory[data["app"]] = list(data["rss"])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)  # after -k / -m deselection

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.total = len(ids)

    def _progress(self, run: RunResult, verdict: Verdict) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        total = self.total or getattr(tr, "_numcollected", 0) or "?"
        tokens = int(run.figure("input_tokens")) + int(run.figure("output_tokens"))
        mark = "PASS" if verdict.passed else "FAIL"
        q = verdict.quality
        served = " ".join(f"{k} {n}" for k, n in (q.get("traffic") or {}).items())
        checks = f"checks {sum(c.passed for c in verdict.checks)}/{len(verdict.checks)}"
        tr.ensure_newline()
        tr.write_line(f"[apps {len(self.entries)}/{total}] {run.app} r{run.repetition}: {mark} "
                      f"{run.wall_s:.2f} s, {tokens} tokens, ${float(run.figure('cost_usd', 0.0) or 0):.5f}, "
                      f"{int(run.figure('llm_calls'))} LLM calls, {checks}, degenerate "
                      f"{q.get('degenerate', 0)}/{q.get('exchanges', 0)}" + (f" [{served}]" if served else "")
                      + ("" if verdict.passed else f" -- {verdict.failures[0]}"),
                      green=verdict.passed, red=not verdict.passed)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        try:
            return (yield)
        finally:
            if self.entries or self.memory:
                self._finish(session)

    def _finish(self, session: pytest.Session) -> None:
        opts = options(self.config)
        outcomes = [outcome(e.manifest, e.verdict.passed, e.run.wall_s, float(e.run.figure("cost_usd", 0.0) or 0))
                    for e in self.entries]
        session_s = None if self.memory else (time.time() - self.started) / opts.repeat
        self.gates = evaluate(outcomes, opts.traffic, self.memory, session_s)
        suite = Suite(traffic=opts.traffic, repeat=opts.repeat, entries=self.entries,
                      rates=success_rates(outcomes), gates=self.gates, memory=self.memory,
                      started=self.started, profile=opts.profile, base_url=opts.base_url or "")
        self._compare(suite, opts)
        self.report_paths = write_reports(suite, opts.report_dir)
        self._regressions = suite.regressions
        record = history.summary(results_dict(suite))
        history.append(opts.report_dir / history.HISTORY_FILE, record)
        save = self.config.getoption("apps_save_baseline")
        if save:
            Path(save).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if not opts.gates:
            return
        for gate in self.gates:
            if gate.passed:
                continue
            report = TestReport(nodeid=f"harness::gate[{gate.name}]", location=("harness/gates.py", None, gate.name),
                                keywords={}, outcome="failed", when="call",
                                longrepr=f"assert {gate.measured} {gate.required}  # gate '{gate.name}' (harness/gates.py)")
            self.config.hook.pytest_runtest_logreport(report=report)

    def _compare(self, suite: Suite, opts: HarnessOptions) -> None:
        """Regressions against the previous run of this traffic mode and against the baseline."""
        current = history.summary(results_dict(suite))
        previous = history.previous_run(opts.report_dir / history.HISTORY_FILE, opts.traffic)
        if previous is not None:
            suite.compared_with["previous run"] = str(previous.get("generated_at"))
            suite.regressions += history.compare(current, previous, "previous run")
        path = opts.compare or (DEFAULT_BASELINE if DEFAULT_BASELINE.is_file() else None)
        if path is None:
            return
        try:
            baseline = history.load_baseline(path)
        except ValueError as e:
            raise pytest.UsageError(f"--apps-compare: {e}") from None
        suite.compared_with["baseline"] = str(path)
        suite.regressions += history.compare(current, baseline, f"baseline {path.name}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.entries or self.memory):
            return
        tr = terminalreporter
        opts = options(self.config)
        tr.section(f"llmspell apps ({opts.traffic}, N={opts.repeat})")
        rates = success_rates(outcome(e.manifest, e.verdict.passed, e.run.wall_s, 0.0) for e in self.entries)
        for name, r in sorted(rates.by_group.items(), key=lambda kv: ("simple", "complex", "expert").index(kv[0])):
            lo, hi = r.interval
            tr.write_line(f"success rate {name:8s} {100 * r.rate:5.1f} % ({r.passed}/{r.total}), "
                          f"95 % Wilson [{100 * lo:.0f}-{100 * hi:.0f} %]")
        for gate in self.gates:
            tr.write_line(("  " if gate.passed else "! ") + gate.message, red=not gate.passed, green=gate.passed)
        by_app: dict[str, list[Entry]] = {}
        for e in self.entries:
            by_app.setdefault(e.manifest.name, []).append(e)
        for app, entries in by_app.items():
            passed = sum(e.verdict.passed for e in entries)
            lo, hi = wilson(passed, len(entries))
            exchanges = sum(int(e.verdict.quality.get("exchanges", 0)) for e in entries)
            degenerate = sum(int(e.verdict.quality.get("degenerate", 0)) for e in entries)
            share = degenerate / exchanges if exchanges else 0.0
            failing = sorted({c.name for e in entries for c in e.verdict.checks if not c.passed})
            n_checks = len(entries[0].verdict.checks)
            t = entries[-1].verdict.timing
            rec = t.get("recorded_latency_s")
            latency = "" if not t.get("exchanges") else (
                f"; latency replayed {t['replay_latency_s']:.2f} s / recorded "
                + ("not in cassette" if rec is None else f"{rec:.1f} s") + f", budget on {t['basis']}")
            tr.write_line(f"{app:24s} {passed}/{len(entries)} passed (95 % interval {100 * lo:.0f}-{100 * hi:.0f} %); "
                          f"checks {n_checks - len(failing)}/{n_checks}; degenerate replies {degenerate}/{exchanges} "
                          f"({100 * share:.0f} %){latency}" + (f"; failing: {', '.join(failing)}" if failing else ""),
                          green=passed == len(entries), red=passed < len(entries))
        for reg in self._regressions:
            tr.write_line(f"! regression {reg.message}", red=True)
        if self.report_paths:
            tr.write_line(f"report: {self.report_paths[1]}  results: {self.report_paths[0]}")
