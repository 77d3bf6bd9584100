"""reports/results.json and reports/index.html (one self-contained file with inline SVG charts)."""

from __future__ import annotations

import html
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmspell.providers.quality import DEGENERATE_LIMIT, Quality

from .gates import Gate, Rate, Rates
from .history import Regression
from .judge import Verdict
from .manifest import AppManifest
from .result import RunResult

_COLORS = {"ok": "#2e7d32", "fail": "#c62828", "bar": "#1565c0", "bar2": "#ef6c00", "grid": "#ddd"}


@dataclass
class Entry:
    """One judged run with its manifest."""

    manifest: AppManifest
    run: RunResult
    verdict: Verdict


@dataclass
class Suite:
    """Everything one harness session produced."""

    traffic: str
    repeat: int
    entries: list[Entry]
    rates: Rates
    gates: list[Gate]
    memory: dict[str, list[int]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    profile: str = "local"
    regressions: list[Regression] = field(default_factory=list)
    compared_with: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates) and all(e.verdict.passed for e in self.entries)


def _app_rows(suite: Suite) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for e in suite.entries:
        m, r = e.manifest, e.run
        row = rows.setdefault(m.name, {
            "app": m.name, "title": m.title, "layer": m.layer, "group": m.group, "agents": m.agents,
            "runs": [], "passed": 0, "total": 0})
        row["total"] += 1
        row["passed"] += int(e.verdict.passed)
        row["runs"].append({
            "repetition": r.repetition, "status": r.status, "passed": e.verdict.passed,
            "failures": e.verdict.failures, "wall_s": r.wall_s, "input_tokens": int(r.figure("input_tokens")),
            "output_tokens": int(r.figure("output_tokens")), "cost_usd": float(r.figure("cost_usd", 0.0) or 0.0),
            "llm_calls": int(r.figure("llm_calls")), "tool_calls": int(r.figure("tool_calls")),
            "agents_created": r.figure("agents_created", None), "tokens": r.figure("tokens", {}),
            "metrics": dict(r.figure("metrics", {}) or {}),
            "rss_mb": round(r.rss_bytes / 2**20, 2), "log": r.log_path, "output_dir": r.output_dir,
            "error": r.error, "cassette_miss": r.cassette_miss,
            "checks": [c.to_dict() for c in e.verdict.checks], "quality": dict(e.verdict.quality),
            "timing": dict(e.verdict.timing), "exchanges": list(r.figure("exchanges", []) or [])})
    for row in rows.values():
        runs = row["runs"]
        row["rate"] = Rate(row["passed"], row["total"]).to_dict()
        q = Quality()
        for x in runs:
            q.add(Quality.from_dict(x["quality"]))
        row["quality"] = {**q.to_dict(), "degenerate_limit": DEGENERATE_LIMIT, "acceptable": q.acceptable}
        checks: dict[str, dict[str, Any]] = {}
        for x in runs:
            for c in x["checks"]:
                agg = checks.setdefault(c["name"], {"name": c["name"], "type": c["type"], "on": c["on"],
                                                    "why": c.get("why", ""), "runs": 0, "passed_runs": 0,
                                                    "reasons": []})
                agg["runs"] += 1
                agg["passed_runs"] += int(c["passed"])
                agg["reasons"].append(f"r{x['repetition']}: {'PASS' if c['passed'] else 'FAIL'} {c['reason']}")
        for agg in checks.values():
            agg["passed"] = agg["passed_runs"] == agg["runs"]
        row["checks"] = list(checks.values())
        t = [x["timing"] for x in runs if x["timing"]]
        rec = [x["recorded_latency_s"] for x in t if x.get("recorded_latency_s") is not None]
        row["timing"] = {
            "basis": t[-1]["basis"] if t else "wall time",
            "replay_latency_s": round(statistics.fmean(x["replay_latency_s"] for x in t), 3) if t else 0.0,
            "recorded_latency_s": round(statistics.fmean(rec), 3) if rec else None,
            "judged_s": round(statistics.median(x["judged_s"] for x in t), 3) if t else row["runs"][0]["wall_s"],
            "note": next((x["note"] for x in t if x.get("note")), ""),
        }
        row["metrics"] = runs[-1]["metrics"]
        row["median_wall_s"] = round(statistics.median(x["wall_s"] for x in runs), 3)
        for key in ("input_tokens", "output_tokens", "llm_calls", "tool_calls"):
            row[f"mean_{key}"] = round(statistics.fmean(x[key] for x in runs), 1)
        row["mean_cost_usd"] = statistics.fmean(x["cost_usd"] for x in runs)
        row["budget_s"] = next(e.manifest.runtime_seconds for e in suite.entries if e.manifest.name == row["app"])
        row["budget_usd"] = next(e.manifest.cost_usd for e in suite.entries if e.manifest.name == row["app"])
    return sorted(rows.values(), key=lambda r: (r["layer"], r["app"]))


def results_dict(suite: Suite) -> dict[str, Any]:
    """The machine-readable summary written to results.json."""
    total_runs = len(suite.entries)
    passed = sum(e.verdict.passed for e in suite.entries)
    apps = _app_rows(suite)
    total = Quality()
    for row in apps:
        total.add(Quality.from_dict(row["quality"]))
    return {
        "traffic": suite.traffic, "profile": suite.profile, "repetitions": suite.repeat,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": suite.passed, "runs_passed": passed, "runs_total": total_runs,
        "total_wall_s": round(sum(e.run.wall_s for e in suite.entries), 3),
        "total_cost_usd": round(sum(float(e.run.figure("cost_usd", 0.0) or 0.0) for e in suite.entries), 6),
        "rates": suite.rates.to_dict(), "gates": [g.to_dict() for g in suite.gates],
        "memory_rss_bytes": suite.memory, "apps": apps, "quality": total.to_dict(),
        "base_url": suite.base_url,
        "history": {"compared_with": dict(suite.compared_with),
                    "regressions": [r.to_dict() for r in suite.regressions]},
    }


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


_GROUP_ORDER = {"simple": 0, "complex": 1, "expert": 2}


def _groups(rates: Rates) -> list[tuple[str, Any]]:
    return sorted(rates.by_group.items(), key=lambda kv: _GROUP_ORDER.get(kv[0], 9))


def _bar_chart(title: str, items: list[tuple[str, float, str]], unit: str, limit: float | None = None) -> str:
    """A horizontal bar chart: (label, value, colour) per bar."""
    if not items:
        return ""
    width, label_w, bar_h, gap = 640, 190, 18, 6
    top = 28
    height = top + len(items) * (bar_h + gap) + 10
    peak = max([v for _, v, _ in items] + [limit or 0, 1e-9])
    scale = (width - label_w - 80) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(title)}"><text x="0" y="16" font-weight="bold">{_esc(title)}</text>']
    for i, (label, value, color) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = max(1.0, value * scale)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{_num(value)} {_esc(unit)}</text>')
    if limit:
        x = label_w + limit * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 4}" stroke="#c62828" '
                     f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{top - 6}" fill="#c62828">'
                     f'gate {limit:g} {_esc(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _line_chart(title: str, series: dict[str, list[int]]) -> str:
    """RSS (MB) per run for each kernel that ran repeatedly."""
    series = {k: v for k, v in series.items() if len(v) > 1}
    if not series:
        return ""
    width, height, left, top, bottom = 760, 240, 50, 28, 30
    n = max(len(v) for v in series.values())
    values = [x / 2**20 for v in series.values() for x in v]
    lo, hi = min(values), max(values)
    if hi - lo < 4.0:  # do not magnify noise: show at least a 4 MB window
        mid = (hi + lo) / 2
        lo, hi = mid - 2.0, mid + 2.0
    span = hi - lo
    palette = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#ad1457", "#455a64"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(title)}"><text x="0" y="16" font-weight="bold">{_esc(title)}</text>'
             f'<text x="0" y="{top + 10}">{hi:.1f}</text><text x="0" y="{height - bottom}">{lo:.1f}</text>']
    for i, (name, v) in enumerate(sorted(series.items())):
        pts = " ".join(f"{left + (j / max(1, n - 1)) * (width - left - 220):.1f},"
                       f"{top + (1 - (x / 2**20 - lo) / span) * (height - top - bottom):.1f}" for j, x in enumerate(v))
        color = palette[i % len(palette)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
                     f'<text x="{width - 200}" y="{top + 14 * i + 10}" fill="{color}">{_esc(name)}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}">run 1 … {n}</text></svg>')
    return "".join(parts)


def _rel(target: str, base: Path) -> str:
    if not target:
        return ""
    try:
        return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:
        return target


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.ok{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}.num{text-align:right}
svg{font:12px system-ui,sans-serif;margin:8px 16px 16px 0}small{color:#666}"""


def render_html(suite: Suite, base: Path) -> str:
    """The report page; links to per-app logs are relative to `base` (the report directory)."""
    data = results_dict(suite)
    verdict = '<span class="ok">PASSED</span>' if suite.passed else '<span class="fail">FAILED</span>'
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>llmspell apps: {_esc(suite.traffic)}</title>"
           f"<style>{_CSS}</style></head><body><h1>llmspell application validation {verdict}</h1>",
           f"<p>traffic <b>{_esc(suite.traffic)}</b>, profile <b>{_esc(suite.profile)}</b>, N = {suite.repeat} "
           f"repetition(s); {data['runs_passed']}/{data['runs_total']} runs passed; total wall "
           f"{data['total_wall_s']:.1f} s; total cost ${data['total_cost_usd']:.4f}; "
           f"generated {_esc(data['generated_at'])}</p>"]
    out.append("<h2>Gates</h2><table><tr><th>gate</th><th>measured</th><th>required</th><th></th></tr>")
    for g in suite.gates:
        cls = "ok" if g.passed else "fail"
        out.append(f"<tr><td>{_esc(g.name)}</td><td>{_esc(g.measured)}</td><td>{_esc(g.required)}</td>"
                   f"<td class='{cls}'>{'ok' if g.passed else 'FAILED'}</td></tr>")
    out.append("</table><h2>Success rate</h2><table><tr><th>group / layer</th><th>passed</th><th>runs</th>"
               "<th>rate</th></tr>")
    for key, r in _groups(suite.rates) + [(f"layer {k}", v) for k, v in sorted(suite.rates.by_layer.items())]:
        out.append(f"<tr><td>{_esc(key)}</td><td class='num'>{r.passed}</td><td class='num'>{r.total}</td>"
                   f"<td class='num'>{100 * r.rate:.1f} %</td></tr>")
    out.append("</table>")
    out.append(_regressions_html(suite))
    out.append("<h2>Applications</h2><table><tr><th>app</th><th>layer</th><th>group</th><th>agents</th>"
               "<th>status</th><th>pass rate (95 % Wilson)</th><th>checks passed</th><th>degenerate replies</th>"
               "<th>runtime (median s)</th><th>tokens in/out (mean)</th><th>cost (mean USD)</th>"
               "<th>LLM calls</th><th>tool calls</th><th>logs</th><th>failures</th></tr>")
    for row in data["apps"]:
        cls = "ok" if row["passed"] == row["total"] else "fail"
        logs = " ".join(f"<a href='{_esc(_rel(x['log'], base))}'>r{x['repetition']}</a>" for x in row["runs"])
        fails = "<br>".join(_esc(f"r{x['repetition']}: {f}") for x in row["runs"] for f in x["failures"])
        out.append(f"<tr><td><b>{_esc(row['app'])}</b><br><small>{_esc(row['title'])}</small></td>"
                   f"<td class='num'>{row['layer']}</td><td>{row['group']}</td><td class='num'>{row['agents']}</td>"
                   f"<td class='{cls}'>{row['passed']}/{row['total']} passed</td>"
                   f"<td class='num'>{_rate_text(row['rate'])}</td>"
                   f"<td class='num {_cls(all(c['passed'] for c in row['checks']))}'>"
                   f"{sum(c['passed'] for c in row['checks'])}/{len(row['checks'])}</td>"
                   f"<td class='num {_cls(row['quality']['acceptable'])}'>{_quality_text(row['quality'])}</td>"
                   f"<td class='num'>{row['median_wall_s']:.2f} <small>/ {row['budget_s']:g}</small></td>"
                   f"<td class='num'>{row['mean_input_tokens']:.0f} / {row['mean_output_tokens']:.0f}</td>"
                   f"<td class='num'>{row['mean_cost_usd']:.5f} <small>/ {row['budget_usd']:g}</small></td>"
                   f"<td class='num'>{row['mean_llm_calls']:.0f}</td><td class='num'>{row['mean_tool_calls']:.0f}</td>"
                   f"<td>{logs}</td><td>{fails}</td></tr>")
    out.append("</table>")
    out.append(_checks_html(data["apps"]))
    out.append(_traffic_html(data["apps"]))
    out.append("<h2>Charts</h2>")
    rows = data["apps"]
    out.append(_bar_chart("Runtime per app (median, s)", [
        (r["app"], r["median_wall_s"], _COLORS["ok" if r["passed"] == r["total"] else "fail"]) for r in rows], "s"))
    out.append(_bar_chart("Success rate per group (%)", [
        (k, 100 * v.rate, _COLORS["bar"]) for k, v in _groups(suite.rates)], "%"))
    out.append(_bar_chart("Success rate per layer (%)", [
        (f"layer {k}", 100 * v.rate, _COLORS["bar"]) for k, v in sorted(suite.rates.by_layer.items())], "%"))
    out.append(_bar_chart("Tokens per run (mean, in + out)", [
        (r["app"], r["mean_input_tokens"] + r["mean_output_tokens"], _COLORS["bar2"]) for r in rows], "tok"))
    out.append(_bar_chart("LLM calls per run (mean)", [
        (r["app"], r["mean_llm_calls"], _COLORS["bar"]) for r in rows], "calls"))
    rss = {r["app"]: [int(x["rss_mb"] * 2**20) for x in r["runs"]] for r in rows}
    rss.update({f"{k} (memory)": v for k, v in suite.memory.items()})
    growth = {k: [x - v[0] for x in v] for k, v in rss.items() if v and all(v)}
    out.append(_line_chart("Kernel RSS growth over repeated runs (MB since the first run)", growth))
    out.append(_extra_section(base))
    out.append("</body></html>\n")
    return "\n".join(out)


def _extra_section(base: Path) -> str:
    """Links to the other reports and the benchmark/load tables (benchmarks/report.py), when present."""
    try:
        from benchmarks.report import extra_section
    except ImportError:
        return ""
    return extra_section(base)


def _cls(ok: bool) -> str:
    return "ok" if ok else "fail"


def _rate_text(rate: dict[str, Any]) -> str:
    lo, hi = rate["wilson95"]
    return f"{100 * rate['rate']:.0f} % [{100 * lo:.0f}-{100 * hi:.0f} %] (N={rate['total']})"


def _quality_text(q: dict[str, Any]) -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in q.get("by_kind", {}).items() if k != "ok")
    return (f"{q['degenerate']}/{q['exchanges']} ({100 * q['degenerate_share']:.0f} %)"
            + (f" {kinds}" if kinds else ""))


def _regressions_html(suite: Suite) -> str:
    against = ", ".join(f"{k}: {v}" for k, v in suite.compared_with.items()) or "nothing (no previous run, no baseline)"
    if not suite.regressions:
        return f"<h2>Regressions</h2><p>none, compared with {_esc(against)}</p>"
    rows = "".join(f"<tr><td class='fail'>{_esc(r.app)}</td><td class='fail'>{_esc(r.what)}</td>"
                   f"<td>{_esc(r.before)}</td><td>{_esc(r.after)}</td><td>{_esc(r.against)}</td></tr>"
                   for r in suite.regressions)
    return (f"<h2 class='fail'>Regressions ({len(suite.regressions)})</h2><p>compared with {_esc(against)}</p>"
            f"<table><tr><th>app</th><th>what</th><th>before</th><th>now</th><th>against</th></tr>{rows}</table>")


def _checks_html(apps: list[dict[str, Any]]) -> str:
    out = ["<h2>Content checks (app.toml [[checks]])</h2><table><tr><th>app</th><th>check</th><th>type / on</th>"
           "<th>passed runs</th><th>reason per run</th><th>why</th></tr>"]
    for row in apps:
        if not row["checks"]:
            out.append(f"<tr><td>{_esc(row['app'])}</td><td colspan='5'><i>no content checks declared</i></td></tr>")
        for c in row["checks"]:
            out.append(f"<tr><td>{_esc(row['app'])}</td><td class='{_cls(c['passed'])}'>{_esc(c['name'])}</td>"
                       f"<td>{_esc(c['type'])} / {_esc(c['on'])}</td><td class='num'>{c['passed_runs']}/{c['runs']}</td>"
                       f"<td>{'<br>'.join(_esc(x) for x in c['reasons'])}</td><td><small>{_esc(c['why'])}</small></td></tr>")
    out.append("</table>")
    return "".join(out)


def _traffic_html(apps: list[dict[str, Any]]) -> str:
    out = ["<h2>Reply quality, metrics and traffic</h2><table><tr><th>app</th><th>exchanges (HIT/MISS/LIVE/RECORD)</th>"
           "<th>degenerate</th><th>metrics (last run)</th><th>latency replayed / recorded (s, mean per run)</th>"
           "<th>budget judged on</th></tr>"]
    for row in apps:
        q, t = row["quality"], row["timing"]
        served = " ".join(f"{k} {n}" for k, n in q.get("traffic", {}).items()) or "none"
        rec = "not in cassette" if t["recorded_latency_s"] is None else f"{t['recorded_latency_s']:.2f}"
        note = f"<br><small>{_esc(t['note'])}</small>" if t.get("note") else ""
        out.append(f"<tr><td>{_esc(row['app'])}</td><td>{_esc(served)}</td>"
                   f"<td class='{_cls(q['acceptable'])}'>{_esc(_quality_text(q))}</td>"
                   f"<td><small>{_esc(', '.join(f'{k}={v}' for k, v in sorted(row['metrics'].items())) or 'none')}"
                   f"</small></td><td class='num'>{t['replay_latency_s']:.2f} / {rec}</td><td>{_esc(t['basis'])}: "
                   f"{t['judged_s']:.1f} s{note}</td></tr>")
    out.append("</table><details><summary>every exchange</summary><table><tr><th>app</th><th>run</th><th>#</th>"
               "<th>served</th><th>kind</th><th>reason</th><th>latency ms (recorded)</th><th>reply</th></tr>")
    for row in apps:
        for x in row["runs"]:
            for i, ex in enumerate(x["exchanges"], 1):
                rec = ex.get("recorded_latency_ms")
                out.append(f"<tr><td>{_esc(row['app'])}</td><td>r{x['repetition']}</td><td>{i}</td>"
                           f"<td>{_esc(ex.get('traffic'))}</td><td class='{_cls(ex.get('kind') == 'ok')}'>"
                           f"{_esc(ex.get('kind'))}</td><td>{_esc(ex.get('reason'))}</td>"
                           f"<td class='num'>{ex.get('latency_ms', 0):.0f} "
                           f"({'not in cassette' if rec is None else f'{rec:.0f}'})</td>"
                           f"<td><small>{_esc(ex.get('reply_excerpt', ''))}</small></td></tr>")
    out.append("</table></details>")
    return "".join(out)


def render_markdown(suite: Suite) -> str:
    """A short Markdown summary (for notes and commit messages): gates, rates, one row per app."""
    data = results_dict(suite)
    out = [f"# llmspell apps: {suite.traffic}, N = {suite.repeat} ({data['generated_at']})", "",
           f"{data['runs_passed']}/{data['runs_total']} runs passed; total wall {data['total_wall_s']:.1f} s; "
           f"total cost ${data['total_cost_usd']:.4f} (priced for the models the apps name)", "",
           "| gate | measured | required | |", "|---|---|---|---|"]
    out += [f"| {g.name} | {g.measured} | {g.required} | {'ok' if g.passed else 'FAILED'} |" for g in suite.gates]
    out += ["", "| group / layer | passed | runs | rate |", "|---|---|---|---|"]
    for key, r in _groups(suite.rates) + [(f"layer {k}", v) for k, v in sorted(suite.rates.by_layer.items())]:
        out.append(f"| {key} | {r.passed} | {r.total} | {100 * r.rate:.1f} % |")
    out += ["", "| app | layer | agents | passed | pass rate (95 % Wilson) | checks | degenerate replies | median s "
            "| tokens in/out | cost USD | LLM calls |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in data["apps"]:
        out.append(f"| {row['app']} | {row['layer']} | {row['agents']} | {row['passed']}/{row['total']} | "
                   f"{_rate_text(row['rate'])} | {sum(c['passed'] for c in row['checks'])}/{len(row['checks'])} | "
                   f"{_quality_text(row['quality'])} | "
                   f"{row['median_wall_s']:.1f} | {row['mean_input_tokens']:.0f}/{row['mean_output_tokens']:.0f} | "
                   f"{row['mean_cost_usd']:.5f} | {row['mean_llm_calls']:.0f} |")
    failing = [(row["app"], c) for row in data["apps"] for c in row["checks"] if not c["passed"]]
    if failing:
        out += ["", "Failing checks:", ""] + [f"- {app}: {c['name']} ({c['reasons'][-1]})" for app, c in failing]
    if suite.regressions:
        out += ["", "Regressions:", ""] + [f"- {r.message}" for r in suite.regressions]
    return "\n".join(out) + "\n"


def write_reports(suite: Suite, report_dir: Path) -> tuple[Path, Path]:
    """Write results.json, index.html and summary.md into `report_dir`; return the first two."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = report_dir / "results.json", report_dir / "index.html"
    json_path.write_text(json.dumps(results_dict(suite), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(render_html(suite, report_dir), encoding="utf-8")
    (report_dir / "summary.md").write_text(render_markdown(suite), encoding="utf-8")
    return json_path, html_path
