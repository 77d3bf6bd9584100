"""Render reports/benchmarks.json and reports/load/load.json as HTML: tables beside the targets, SVG charts.

`render_sections(reports_dir) -> str` returns an HTML fragment (used by the main report page);
`python -m benchmarks.report` writes reports/benchmarks.html on its own.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def _bar_chart(rows: list[tuple[str, float, float | None]], unit: str, width: int = 640) -> str:
    """Horizontal bars of value vs limit (a tick marks the limit)."""
    if not rows:
        return ""
    top = max(max(v, lim or 0.0) for _, v, lim in rows) or 1.0
    bar_h, gap, label_w = 16, 6, 230
    height = len(rows) * (bar_h + gap) + 10
    scale = (width - label_w - 80) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="figures in {html.escape(unit)}" style="font:11px sans-serif">']
    for i, (label, value, limit) in enumerate(rows):
        y = 5 + i * (bar_h + gap)
        ok = limit is None or value <= limit
        color = "#3a7d44" if ok else "#b23a48"
        parts.append(f'<text x="0" y="{y + 12}">{html.escape(label[:38])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{max(1.0, value * scale):.1f}" height="{bar_h}" '
                     f'fill="{color}"><title>{value:.4g} {html.escape(unit)}</title></rect>')
        if limit is not None:
            lx = label_w + limit * scale
            parts.append(f'<line x1="{lx:.1f}" y1="{y - 2}" x2="{lx:.1f}" y2="{y + bar_h + 2}" stroke="#222" '
                         f'stroke-dasharray="3,2"><title>limit {limit:.4g}</title></line>')
        parts.append(f'<text x="{label_w + value * scale + 4:.1f}" y="{y + 12}">{value:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _limit_number(limit: str) -> float | None:
    for piece in limit.split(","):
        piece = piece.strip()
        if piece.startswith("p50 <="):
            try:
                return float(piece.split("<=")[1].split()[0])
            except (IndexError, ValueError):
                return None
    return None


def render_sections(reports: Path) -> str:
    """The benchmark and load sections as one HTML fragment ('' when neither was run)."""
    bench = _load(reports / "benchmarks.json")
    load = _load(reports / "load" / "load.json")
    out: list[str] = []
    figs = bench.get("figures", [])
    if figs:
        out.append(f"<h2>Benchmarks</h2><p>Generated {html.escape(bench.get('generated', ''))}; "
                   "pytest-benchmark without xdist, medians and p99 over the rounds shown.</p>")
        out.append("<table><tr><th>figure</th><th>median</th><th>p99</th><th>unit</th><th>gate</th>"
                   "<th>result</th><th>peer</th><th>ratio</th><th>rounds</th></tr>")
        for f in sorted(figs, key=lambda f: f["name"]):
            res = "pass" if f.get("passed", True) else "FAIL"
            out.append(
                f"<tr class='{'ok' if res == 'pass' else 'bad'}'><td>{html.escape(f['name'])}</td>"
                f"<td>{_fmt(f.get('median'))}</td><td>{_fmt(f.get('p99'))}</td><td>{html.escape(f.get('unit', ''))}</td>"
                f"<td>{html.escape(f.get('limit', ''))}</td><td>{res}</td><td>{_fmt(f.get('peer'))}</td>"
                f"<td>{_fmt(f.get('ratio'))}</td><td>{_fmt(f.get('rounds'))}</td></tr>")
        out.append("</table>")
        ms_rows = [(f["name"], float(f["median"]), _limit_number(f.get("limit", "")))
                   for f in figs if f.get("unit") == "ms" and f.get("median") is not None]
        out.append(_bar_chart(sorted(ms_rows)[:40], "ms"))
    results = load.get("results", [])
    if results:
        out.append(f"<h2>Load (locust)</h2><p>Gate: 0 failures, no lost replies, p99 &lt;= "
                   f"{load.get('p99_gate_ms', 50)} ms. Mixed execute/kernel_info/complete/inspect.</p>")
        out.append("<table><tr><th>scenario</th><th>kernel</th><th>users</th><th>kernels</th><th>requests</th>"
                   "<th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>failures</th><th>lost</th><th>result</th>"
                   "<th>locust report</th></tr>")
        for r in results:
            res = ("pass" if r["passed"] else "FAIL") if r.get("gated", True) else "peer"
            out.append(
                f"<tr class='{'bad' if res == 'FAIL' else 'ok'}'><td>{html.escape(r['scenario'])}</td>"
                f"<td>{html.escape(r['kernel'])}</td><td>{r['users']}</td><td>{r['kernels']}</td>"
                f"<td>{r['requests']}</td><td>{r['rps']:.1f}</td><td>{r['p50_ms']:.1f}</td><td>{r['p99_ms']:.1f}</td>"
                f"<td>{r['failures']}</td><td>{r['lost']}</td><td>{res}</td>"
                f"<td><a href='load/{html.escape(r['scenario'])}.html'>html</a></td></tr>")
        out.append("</table>")
        out.append(_bar_chart([(r["scenario"], float(r["rps"]), None) for r in results], "req/s"))
    return "\n".join(out)


START, END = "<!--llmspell:extra:start-->", "<!--llmspell:extra:end-->"

_LINKS = (
    ("pytest-tests.html", "test suite (pytest-html)"),
    ("pytest-apps.html", "app validation (pytest-html)"),
    ("benchmarks.html", "benchmarks and load, standalone page"),
    ("benchmarks.json", "benchmark figures (JSON)"),
    ("results.json", "app results (JSON)"),
    ("load/load.json", "load results (JSON)"),
)


def extra_section(reports: Path) -> str:
    """Links to the other reports that exist, then the benchmark and load sections (for index.html)."""
    links = [f"<li><a href='{href}'>{html.escape(label)}</a></li>" for href, label in _LINKS
             if (reports / href).exists()]
    out = [START, "<h2>Other reports</h2>", f"<ul>{''.join(links)}</ul>" if links else "<p>none yet</p>",
           render_sections(reports), END]
    return "\n".join(out)


def update_index(reports: Path) -> Path:
    """Refresh the marked region of reports/index.html (or write a small index when there is none)."""
    index = reports / "index.html"
    section = extra_section(reports)
    if index.exists():
        text = index.read_text(encoding="utf-8")
        if START in text and END in text:
            head, rest = text.split(START, 1)
            text = head + section + rest.split(END, 1)[1]
        else:
            text = text.replace("</body>", section + "</body>")
    else:
        text = (f"<!doctype html><html><head><meta charset='utf-8'><title>llmspell reports</title>"
                f"<style>{PAGE_STYLE}</style></head><body><h1>llmspell reports</h1>"
                "<p>The app validation has not run here yet (tox -e apps).</p>" + section + "</body></html>")
    index.write_text(text, encoding="utf-8")
    return index


PAGE_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
              "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}tr.bad{background:#fbe3e6}"
              "tr.ok td:nth-child(6){color:#3a7d44}")


def main(argv: list[str] | None = None) -> int:
    reports = Path(argv[0]) if argv else ROOT / "reports"
    body = render_sections(reports) or "<p>No benchmark or load results yet: run tox -e bench / tox -e load.</p>"
    (reports / "benchmarks.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>llmspell benchmarks</title>"
        f"<style>{PAGE_STYLE}</style></head><body><h1>llmspell benchmarks and load</h1>{body}</body></html>")
    print(reports / "benchmarks.html")
    print(update_index(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
