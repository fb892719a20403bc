"""The run as one self-contained HTML file: inline CSS, inline SVG charts, a few lines of inline JS.

Nothing is fetched at view time: no external script, stylesheet, font or
image, and a Content-Security-Policy forbids any (the one inline script is
allowed by its hash). Every piece of text from the run goes through
``html.escape``, so a case reason holding ``<script>`` is shown, never run.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from pytest_llmops.reporting import _common as c
from pytest_llmops.reporting import _svg
from pytest_llmops.reporting._waterfall import waterfall

if TYPE_CHECKING:
    from pytest_llmops.history.drift_trend import DriftPoint
    from pytest_llmops.history.store import SuiteRun
    from pytest_llmops.results.models import CallResult, CaseResult, Comparison, LatencyGroup, RunResult, ScoreResult

#: Cases listed beyond the failing ones are capped so a huge run still gives a file a browser opens quickly.
MAX_LISTED_CASES = 2000

_STYLE = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
  --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#cf222e; --fail-bg:#ffebe9; --warn:#9a6700; --warn-bg:#fff8c5;
  --accent:#0969da; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--fg); background:var(--soft); }
main, header .inner { max-width:1120px; margin:0 auto; padding:0 24px; }
header { background:var(--bg); border-bottom:1px solid var(--line); padding:20px 0 12px; }
header.failed { border-top:6px solid var(--fail); } header.passed { border-top:6px solid var(--pass); }
h1 { margin:0; font-size:26px; display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
h1 .product { font-weight:400; color:var(--muted); font-size:16px; }
.verdict-word { padding:2px 12px; border-radius:6px; color:#fff; }
.failed .verdict-word { background:var(--fail); } .passed .verdict-word { background:var(--pass); }
.why { margin:8px 0 12px; font-size:15px; }
.why li { margin:2px 0; }
dl.provenance { display:grid; grid-template-columns:max-content 1fr max-content 1fr; gap:2px 16px; margin:0;
  font-size:13px; color:var(--muted); }
dl.provenance dt { font-weight:600; } dl.provenance dd { margin:0; color:var(--fg); overflow-wrap:anywhere; }
nav { font-size:13px; margin-top:10px; } nav a { margin-right:14px; color:var(--accent); text-decoration:none; }
section { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:20px 0; }
h2 { font-size:18px; margin:0 0 12px; }
h3 { font-size:15px; margin:0 0 6px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--soft); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
code { font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; overflow-wrap:anywhere; }
.badge { display:inline-block; padding:0 8px; border-radius:10px; font-size:12px; font-weight:600; white-space:nowrap; }
.v-pass, .s-passed, .v-improvement { background:var(--pass-bg); color:var(--pass); }
.v-fail, .s-failed, .s-error, .v-regression { background:var(--fail-bg); color:var(--fail); }
.v-unmeasured, .s-unmeasured { background:var(--warn-bg); color:var(--warn); }
.s-skipped, .s-xfailed, .v-no-significant-change { background:var(--soft); color:var(--muted); }
tr.fail td { background:#fff6f5; }
.tiles { display:flex; gap:12px; flex-wrap:wrap; }
.tile { border:1px solid var(--line); border-radius:8px; padding:8px 16px; min-width:110px; }
.tile .n { font-size:24px; font-weight:700; display:block; } .tile .k { color:var(--muted); font-size:12px; }
.tile.failed .n, .tile.error .n { color:var(--fail); } .tile.passed .n { color:var(--pass); }
.tile.unmeasured { border:2px dashed var(--warn); } .tile.unmeasured .n { color:var(--warn); }
.note { color:var(--muted); font-size:12px; margin:8px 0 0; }
.alert { border:1px solid var(--warn); background:var(--warn-bg); color:#4d2d00; padding:10px 14px; border-radius:6px;
  margin:0 0 12px; font-weight:600; }
.charts { display:grid; grid-template-columns:repeat(auto-fill,minmax(440px,1fr)); gap:16px; }
figure { margin:0; } figcaption { font-size:12px; color:var(--muted); }
svg.chart { width:100%; height:auto; max-width:560px; display:block; font-size:11px; }
svg .axis line { stroke:#8c959f; } svg .axis .grid { stroke:#eaeef2; } svg .axis text { fill:var(--muted); }
svg .label { fill:var(--fg); font-size:12px; }
svg .threshold-label, svg .marker-label, svg .fit-label { paint-order:stroke; stroke:#fff; stroke-width:4px; stroke-linejoin:round; }
svg .bar { fill:#54aeff; } svg .bar.bad { fill:#ff8182; }
table.waterfall td.lane { width:45%; } .span-bar { height:10px; background:#54aeff; border-radius:2px; }
.span-bar.bad { background:#ff8182; }
svg .threshold { stroke:var(--fail); stroke-width:2; stroke-dasharray:6 3; } svg .threshold-label { fill:var(--fail); font-weight:600; }
svg .marker { stroke:#8250df; stroke-width:1.5; stroke-dasharray:3 3; } svg .marker-label { fill:#8250df; }
svg .front-dot { fill:#1a7f37; } svg .dominated-dot { fill:#fff; stroke:#57606a; stroke-width:1.5; } svg .front { stroke:#1a7f37; stroke-width:2; } svg .point-label { font-size:10px; } svg .dot { fill:#0969da; fill-opacity:.55; } svg .fit { stroke:#bc4c00; stroke-width:2; } svg .fit-label { fill:#bc4c00; font-weight:600; } svg .trend-line { stroke:#0969da; stroke-width:2; }
.filter { display:flex; align-items:center; gap:10px; margin:0 0 12px; }
.filter input { font:inherit; padding:6px 10px; border:1px solid var(--line); border-radius:6px; width:360px; max-width:100%; }
details.case { border:1px solid var(--line); border-radius:6px; margin:6px 0; background:var(--bg); }
details.case > summary { cursor:pointer; padding:8px 12px; display:flex; gap:10px; align-items:baseline; flex-wrap:wrap; }
details.case[open] > summary { border-bottom:1px solid var(--line); background:var(--soft); }
details.case .short { color:var(--muted); font-size:13px; flex:1 1 300px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
details.case .body { padding:10px 14px; }
pre.reason { white-space:pre-wrap; overflow-wrap:anywhere; background:var(--soft); border-left:4px solid var(--fail);
  padding:8px 12px; margin:0 0 10px; font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
.state-unmeasured pre.reason { border-left-color:var(--warn); }
.visually-hidden { position:absolute; left:-9999px; width:1px; height:1px; overflow:hidden; }
footer { max-width:1120px; margin:0 auto 30px; padding:0 24px; color:var(--muted); font-size:12px; }
"""

# Narrows the case lists to names containing the typed text; runs only where the CSP hash below allows it.
_SCRIPT = """
(function () {
  var box = document.getElementById("case-filter");
  if (!box) { return; }
  var count = document.getElementById("case-count");
  box.addEventListener("input", function () {
    var needle = box.value.trim().toLowerCase(), shown = 0, all = document.querySelectorAll("details.case");
    all.forEach(function (item) {
      var hit = item.getAttribute("data-name").indexOf(needle) !== -1;
      item.hidden = !hit; if (hit) { shown += 1; }
    });
    count.textContent = shown + " of " + all.length + " cases shown";
  });
})();
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _badge(kind: str, prefix: str = "v") -> str:
    return f'<span class="badge {prefix}-{_e(kind.replace(" ", "-"))}">{_e(kind)}</span>'


def _table(caption: str, headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]],
           row_classes: Sequence[str] = ()) -> str:
    """A table with a caption for screen readers; ``headers`` are (label, numeric); cells are HTML already escaped."""
    numeric = [num for _, num in headers]
    head = "".join(f'<th scope="col"{" class=num" if num else ""}>{_e(label)}</th>' for label, num in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(f'<td{" class=num" if numeric[j] else ""}>{cell}</td>' for j, cell in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        f'<table><caption class="visually-hidden">{_e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _header(run: RunResult) -> str:
    verdict = c.run_verdict(run)
    word = verdict.word.lower()
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in verdict.reasons)
    facts = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in c.provenance(run))
    links = [("gates", "Gates"), ("counts", "Cases"), ("baseline", "Baseline"), ("scores", "Scores"),
             ("latency", "Latency"), ("cases", "Case details")]
    if run.comparison is None:
        links.remove(("baseline", "Baseline"))
    links[2:2] = [(_matrix_anchor(m.name), f"Matrix {m.name}") for m in run.matrices]
    nav = "".join(f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label in links)
    return (
        f'<header class="{word}" role="banner"><div class="inner">'
        f'<h1><span class="verdict-word" id="verdict">{verdict.word}</span>'
        f'<span class="product">pytest-llmops report</span></h1>'
        f'<ul class="why" id="verdict-reasons">{reasons}</ul>'
        f'<dl class="provenance">{facts}</dl><nav aria-label="sections">{nav}</nav></div></header>'
    )


def _gates(run: RunResult) -> str:
    if not run.gates:
        return '<section id="gates"><h2>Gates</h2><p class="note">No release gates were set (llmops_gates).</p></section>'
    rows = [
        (
            f"<code>{_e(c.gate_label(g))}</code>",
            _e(c.with_unit(g.value, g.unit)),
            _e(f"{g.op} {c.with_unit(g.threshold, g.unit)}"),
            _badge(g.verdict),
            _e(g.n),
            _e(g.detail),
            _e(g.source),
        )
        for g in run.gates
    ]
    headers = [("gate", False), ("value", True), ("threshold", True), ("verdict", False), ("n", True),
               ("how it was computed", False), ("from", False)]
    classes = ["fail" if g.verdict != "pass" else "" for g in run.gates]
    return f'<section id="gates"><h2>Gates</h2>{_table("Release gates", headers, rows, classes)}</section>'


def _counts(run: RunResult) -> str:
    counts = c.counts(run)
    tiles = "".join(
        f'<div class="tile {state}"><span class="n">{counts[state]}</span><span class="k">{state}</span></div>'
        for state in c.STATES
        if counts[state] or state in ("passed", "failed", "unmeasured")
    )
    groups = ""
    if run.group_scores:
        rows = [(_e(s.name), _e(c.number(s.value)), _e(c.number(s.threshold)), _badge(s.verdict), _e(s.reason))
                for s in run.group_scores]
        headers = [("group score", False), ("value", True), ("threshold", True), ("verdict", False), ("reason", False)]
        groups = "<h3 style='margin-top:14px'>Group scores</h3>" + _table("Group scores", headers, rows)
    return (
        f'<section id="counts"><h2>Cases</h2><div class="tiles">{tiles}</div>'
        '<p class="note">Unmeasured cases (a judge that did not answer, a budget spent) are shown apart: '
        f"never counted as passed.</p>{groups}</section>"
    )


def _robust(run: RunResult) -> str:
    """Attack success rate of the llm_robust cases, overall and per strategy (nothing without such cases)."""
    from pytest_llmops.results.stats import wilson_interval
    from pytest_llmops.robust.asr import ASR, pooled

    counts = pooled(run.cases)
    if ASR not in counts:
        return ""
    names = [ASR, *sorted((n for n in counts if n != ASR), key=lambda n: (-counts[n][0] / counts[n][1], n))]
    rows = []
    for name in names:
        broken, trials = counts[name]
        low, high = wilson_interval(broken, trials)
        label = "all strategies" if name == ASR else name[len(ASR) + 1:]
        rows.append((_e(label), str(broken), str(trials), f"{broken / trials:.3f}", f"[{low:.3f}, {high:.3f}]"))
    headers = (("strategy", False), ("broke the model", True), ("examples", True), ("attack success rate", True),
               ("Wilson 95%", True))
    return (f'<section id="robust"><h2>Attack success rate</h2>'
            f'{_table("Attack success rate per strategy", headers, rows)}'
            '<p class="note">Distinct examples of the llm_robust searches, before shrinking.</p></section>')


def _matrix_anchor(name: str) -> str:
    # A matrix name is the user's text: the anchor keeps only characters safe in an id and a URL fragment.
    return "matrix-" + "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _matrices(run: RunResult) -> str:
    """Each matrix: the best cell and its paired test, the Pareto front as a picture, the table of cells."""
    if not run.matrices:
        return ""
    from pytest_llmops.matrix.summary import table_rows

    parts = []
    for summary in run.matrices:
        rows = table_rows(summary)
        headers = [(label, 0 < i < len(rows[0]) - 1) for i, label in enumerate(rows[0])]
        table = _table(f"Cells of matrix {summary.name}", headers, [[_e(v) for v in row] for row in rows[1:]],
                       ["best" if cell.cell == summary.best else "" for cell in summary.cells])
        measured = [cell for cell in summary.cells if cell.pass_rate is not None]
        # Cost is the x axis only when it tells the cells apart: a local model's cells all cost 0.
        costs = {cell.cost_usd for cell in measured}
        by_cost = measured and None not in costs and len(costs) > 1
        by_latency = measured and all(cell.latency_p50_s is not None for cell in measured)
        chart = ""
        if by_cost or by_latency:
            points = [((cell.cost_usd if by_cost else cell.latency_p50_s), cell.pass_rate.value, cell.cell, cell.pareto)
                      for cell in measured]  # type: ignore[union-attr]
            chart = _svg.pareto(points, title=f"Matrix {summary.name}: pass rate against "
                                f"{'cost' if by_cost else 'latency p50'}; the Pareto front in green",
                                x_label="cost (USD)" if by_cost else "latency p50 (s)")
        front = ", ".join(cell.cell for cell in summary.cells if cell.pareto)
        parts.append(
            f'<section id="{_matrix_anchor(summary.name)}"><h2>Matrix {_e(summary.name)}</h2>'
            f"<p><strong>{_e(summary.statement)}</strong></p>{chart}"
            f'<p class="note">Pareto front ({_e(" / ".join(summary.pareto_axes))}): {_e(front)}. Best = highest '
            f"lower bound of the pass rate's Wilson interval; best vs runner-up by the exact McNemar test on the "
            f"cases both ran.</p>{table}</section>"
        )
    return "".join(parts)


def _comparison(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    alerts = "".join(f'<div class="alert" role="alert">⚠ {_e(w)}</div>' for w in comparison.warnings)
    rows, classes = [], []
    for m in comparison.metrics:
        percent = m.kind == "pass_fail"
        ci = (f"[{c.signed(m.ci_low, percent=percent)}, {c.signed(m.ci_high, percent=percent)}]"
              if m.ci_low is not None and m.ci_high is not None else "-")
        rows.append((
            _e(m.metric),
            _e(c.rate_or_number(m.baseline, percent=percent)),
            _e(c.rate_or_number(m.current, percent=percent)),
            _e(c.signed(m.delta, percent=percent)),
            _e(ci),
            _e(c.p_value(m.p_value)),
            _e(m.n_pairs),
            _badge(m.verdict),
            _e(" ".join(x for x in (m.test, m.reason) if x)),
        ))
        classes.append("fail" if m.verdict == "regression" else "")
    headers = [("metric", False), ("baseline", True), ("current", True), ("delta", True), ("95% CI", True),
               ("p", True), ("pairs", True), ("verdict", False), ("test", False)]
    base = (f"{comparison.baseline_name}, recorded {c.when(comparison.baseline_created_at)} at revision "
            f"{comparison.baseline_git_revision or 'unknown'}")
    notes = [f"Baseline {base}. Tolerance {c.number(comparison.tolerance)}, alpha {c.number(comparison.alpha)}."]
    if comparison.cases_only_in_baseline or comparison.cases_only_in_current:
        notes.append(f"Not paired: {len(comparison.cases_only_in_baseline)} case(s) only in the baseline, "
                     f"{len(comparison.cases_only_in_current)} only in this run.")
    worst = ""
    if comparison.worst_cases:
        wrows = [(f"<code>{_e(d.nodeid)}</code>", _e(d.metric), _e(c.number(d.baseline)), _e(c.number(d.current)),
                  _e(c.signed(d.delta))) for d in comparison.worst_cases]
        worst = "<h3 style='margin-top:14px'>Cases that moved most</h3>" + _table(
            "Cases that moved most", [("case", False), ("metric", False), ("baseline", True), ("current", True),
                                      ("delta", True)], wrows)
    return (
        f'<section id="baseline"><h2>Against the baseline</h2>{alerts}'
        f'{_table("Metrics compared with the baseline", headers, rows, classes)}'
        f'<p class="note">{_e(" ".join(notes))}</p>{worst}</section>'
    )


def _score_charts(run: RunResult) -> str:
    by_name: dict[str, list[ScoreResult]] = {}
    for case in run.cases:
        for score in case.scores:
            by_name.setdefault(score.name, []).append(score)
    if not by_name:
        return '<section id="scores"><h2>Score distributions</h2><p class="note">No case recorded a score.</p></section>'
    figures = []
    for name, scores in sorted(by_name.items()):
        values = [s.value for s in scores if s.value is not None]
        unmeasured = sum(s.value is None for s in scores)
        thresholds = Counter(s.threshold for s in scores if s.threshold is not None)
        threshold = thresholds.most_common(1)[0][0] if thresholds else None
        higher = sum(s.higher_is_better for s in scores) * 2 >= len(scores)
        in_unit = all(0 <= v <= 1 for v in values) and (threshold is None or 0 <= threshold <= 1)
        mean = sum(values) / len(values) if values else None
        chart = _svg.histogram(
            values,
            title=f"Distribution of {name} over {len(values)} cases",
            x_label=name,
            domain=(0.0, 1.0) if in_unit else None,
            threshold=threshold,
            bad_side="below" if higher else "above",
        )
        caption = (f"{name}: {len(values)} measured, {unmeasured} unmeasured, mean {c.number(mean)}"
                   + (f", threshold {c.number(threshold)} ({'higher' if higher else 'lower'} is better)"
                      if threshold is not None else ""))
        figures.append(f"<figure>{chart}<figcaption>{_e(caption)}</figcaption></figure>")
    return f'<section id="scores"><h2>Score distributions</h2><div class="charts">{"".join(figures)}</div></section>'


def _llm_calls(run: RunResult) -> list[CallResult]:
    return [call for case in run.cases for call in case.calls
            if call.role == "llm" and call.kind == "chat" and call.error is None and call.latency_s is not None]


def _latency(run: RunResult) -> str:
    figures = []
    llm_groups = [g for g in run.latency if g.role == "llm" and g.group == "all"] or [
        g for g in run.latency if g.role == "llm"]
    latencies = [call.latency_s for call in _llm_calls(run) if call.latency_s is not None]
    if not latencies:
        latencies = [p[1] for g in llm_groups for p in g.points]
    if latencies:
        markers = []
        if len(llm_groups) == 1:
            g = llm_groups[0]
            markers = [(v, f"{k} {c.seconds(v)}") for k, v in (("p50", g.p50_s), ("p95", g.p95_s)) if v is not None]
        chart = _svg.histogram(latencies, title=f"Latency of the model under test over {len(latencies)} calls",
                               x_label="latency (s)", bins=12, markers=markers)
        caption = f"{len(latencies)} calls of the model under test; cache hits count with their recorded timings"
        figures.append(f"<figure>{chart}<figcaption>{_e(caption)}</figcaption></figure>")
    for g in llm_groups:
        if not g.points:
            continue
        line = None
        label = ""
        if g.slope_ms_per_token is not None and g.intercept_s is not None:
            line = (g.slope_ms_per_token / 1000, g.intercept_s)
            label = f"fit: {c.seconds(g.intercept_s)} + {g.slope_ms_per_token:.2f} ms per output token"
        chart = _svg.scatter(g.points, title=f"Output length against latency, {g.model}", x_label="output tokens",
                             y_label="latency (s)", line=line, line_label=label)
        caption = f"{g.model}: {len(g.points)} calls; {label or 'no fit'}"
        figures.append(f"<figure>{chart}<figcaption>{_e(caption)}</figcaption></figure>")
    table = ""
    if run.latency:
        rows = [_latency_row(g) for g in run.latency]
        headers = [("role", False), ("model", False), ("group", False), ("calls", True), ("p50", True), ("p95", True),
                   ("p99", True), ("ttft p50 / p95", True), ("ms/token", True), ("tokens in / out", True), ("cost", True)]
        table = _table("Latency, tokens and cost", headers, rows)
    if not figures and not table:
        return '<section id="latency"><h2>Latency, tokens and cost</h2><p class="note">No model call was made.</p></section>'
    charts = f'<div class="charts">{"".join(figures)}</div>' if figures else ""
    return f'<section id="latency"><h2>Latency, tokens and cost</h2>{charts}{table}</section>'


def _latency_row(g: LatencyGroup) -> tuple[str, ...]:
    calls = f"{g.calls} ({g.replayed} replayed)" if g.replayed else str(g.calls)
    ttft = f"{c.seconds(g.ttft_p50_s)} / {c.seconds(g.ttft_p95_s)}" if g.ttft_p50_s is not None else "-"
    return tuple(_e(v) for v in (
        g.role, g.model, g.group, calls, c.seconds(g.p50_s), c.seconds(g.p95_s), c.seconds(g.p99_s), ttft,
        f"{g.ms_per_token:.1f}" if g.ms_per_token is not None else "-", c.tokens(g.tokens_in, g.tokens_out, g.calls_unknown_tokens),
        c.usd(g.cost_usd) if g.cost_usd is not None else "unknown",
    ))


def _case(case: CaseResult) -> str:
    reason = c.case_reason(case) if case.state in c.PROBLEM_STATES else case.reason
    parts = [f'<pre class="reason">{_e(reason)}</pre>'] if reason else []
    if case.scores:
        rows = [(_e(s.name), _e(c.number(s.value)), _e(c.number(s.threshold)), _badge(s.verdict), _e(s.reason))
                for s in case.scores]
        parts.append(_table(f"Scores of {case.nodeid}", [("score", False), ("value", True), ("threshold", True),
                                                         ("verdict", False), ("reason", False)], rows))
    if case.calls:
        rows = [
            (_e(call.role), _e(call.model), _e(c.seconds(call.latency_s)), _e(c.seconds(call.ttft_s)),
             _e(c.tokens(call.tokens_in, call.tokens_out)),
             _e(c.usd(call.cost_usd) if call.cost_usd is not None else "unknown"), _e("yes" if call.cache_hit else "no"),
             _e(call.error or ""))
            for call in case.calls
        ]
        parts.append("<h3 style='margin-top:10px'>Calls</h3>" + _table(
            f"Calls of {case.nodeid}", [("role", False), ("model", False), ("latency", True), ("ttft", True),
                                        ("tokens in / out", True), ("cost", True), ("cache hit", False),
                                        ("error", False)], rows))
    if case.spans:
        parts.append(waterfall(case.spans))
    short = c.truncate(reason, 140) if reason else ""
    return (
        f'<details class="case state-{_e(case.state)}" data-name="{_e(case.nodeid.lower())}">'
        f"<summary>{_badge(case.state, 's')} <code>{_e(case.nodeid)}</code>"
        f'<span class="short">{_e(short)}</span></summary>'
        f'<div class="body">{"".join(parts) or "<p class=note>Nothing recorded.</p>"}</div></details>'
    )


def _cases(run: RunResult) -> str:
    problems = c.problem_cases(run)
    others = [case for case in run.cases if case.state not in c.PROBLEM_STATES][:MAX_LISTED_CASES]
    listed = len(problems) + len(others)
    problem_html = "".join(_case(case) for case in problems) or '<p class="note">No failing or unmeasured case.</p>'
    other_html = "".join(_case(case) for case in others)
    capped = (f'<p class="note">Showing the first {len(others)} of the other cases.</p>'
              if len(others) < len(run.cases) - len(problems) else "")
    return (
        '<section id="cases"><h2>Case details</h2>'
        '<div class="filter"><label for="case-filter">Find a case by name</label>'
        '<input id="case-filter" type="search" placeholder="part of a test id, e.g. test_rag" autocomplete="off">'
        f'<span id="case-count" class="note" aria-live="polite">{listed} of {listed} cases shown</span></div>'
        f'<h3>Failing and unmeasured cases ({len(problems)})</h3><div id="problem-cases">{problem_html}</div>'
        + (f'<h3 style="margin-top:16px">Other cases ({len(others)})</h3><div id="other-cases">{other_html}</div>{capped}'
           if others else "")
        + "</section>"
    )


def _history(history: Sequence[SuiteRun]) -> str:
    """The suite's earlier runs from the run history: pass rate over time, and each gate's values."""
    if len(history) < 2:
        return ""
    chart = _svg.trend(
        [(f"{run.run_id[:8]} ({_when(run.finished_at)})", run.pass_rate) for run in history],
        title=f"Pass rate of the last {len(history)} runs of this suite, oldest first",
    )
    expressions = sorted({expression for run in history for expression in run.gates})
    headers = [("run", False), ("finished (UTC)", False), ("revision", False), ("pass rate", True),
               ("exit", True), *((expression, True) for expression in expressions)]
    rows = [
        (_e(run.run_id[:8]), _e(_when(run.finished_at)), _e((run.git_revision or "-")[:12]),
         _e(c.number(run.pass_rate)), _e("interrupted" if run.interrupted else str(run.exit_status)),
         *(_e(c.number(run.gates.get(expression))) for expression in expressions))
        for run in reversed(history)
    ]
    return (f'<section id="history"><h2>History</h2>{chart}'
            f'{_table("Earlier runs of this suite, newest first", headers, rows)}'
            '<p class="note">From the run history (--llmops-history): the same suite on the same branch; '
            "this run is the newest. `llmops history trend SCORE` prints any score's trend.</p></section>")


def _drift_over_time(drift: Mapping[str, Sequence[DriftPoint]], against: str | None = None) -> str:
    """Each drift check's p-value window by window against its reference (by default the first
    of the suite's recent runs, as the run report shows it)."""
    charts = []
    for name, points in drift.items():
        if len(points) < 2:
            continue
        reference = against or f"the first of the last {len(points)} runs"
        # The reference window is the sample itself: p = 1, drawn on the line so the chart starts there.
        chart = _svg.trend(
            [(f"{p.run_ids[0][:8]} ({_when(p.finished_at)})", 1.0 if p.is_reference else p.p_value) for p in points],
            title=f"{name}: p-value against {reference}, oldest first",
            y_label="p-value",
        )
        headers = [("run", False), ("finished (UTC)", False), ("revision", False), ("n", True),
                   ("statistic", True), ("p-value", True), ("drifted", False), ("centroid shift", True)]
        rows = [
            (_e(p.run_ids[0][:8]), _e(_when(p.finished_at)), _e((p.git_revision or "-")[:12]), _e(str(p.n)),
             _e("reference" if p.is_reference else p.note or f"{p.statistic_name} {c.number(p.statistic)}"),
             _e(c.number(p.p_value)), _e("-" if p.drifted is None else ("yes" if p.drifted else "no")),
             _e(c.number(p.centroid_shift)))
            for p in reversed(points)
        ]
        charts.append(f"<h3>{_e(name)}</h3>{chart}{_table(f'{name}, newest first', headers, rows)}")
    if not charts:
        return ""
    return ('<section id="drift-over-time"><h2>Drift over time</h2>' + "".join(charts)
            + '<p class="note">Recomputed from the embedding summaries the runs kept (at most 128 answers each by '
            f"default, seeded): each window against {_e(against or 'the first of these runs')}; a hollow mark on the "
            "axis is a window that could not be compared (another embedder, the table says why). "
            "`llmops history trend drift` prints the same as a table.</p></section>")


def render_drift_page(drift: Mapping[str, Sequence[DriftPoint]], *, against: str, source: str) -> str:
    """A page of its own with the drift-over-time charts (``llmops history trend drift --html``)."""
    body = _drift_over_time(drift, against) or '<section><p class="note">No drift check has two windows yet.</p></section>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(f'Drift over time: {source}')}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f'<header><div class="inner"><h1>Drift over time</h1><p>{_e(source)}</p></div></header><main>{body}</main>'
        "<footer>Generated by pytest-llmops from the run history. "
        "This file is self-contained: it loads nothing from the network.</footer>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp))


def render_html(
    run: RunResult, history: Sequence[SuiteRun] = (), drift: Mapping[str, Sequence[DriftPoint]] | None = None
) -> str:
    """The whole report as one HTML document that needs nothing but a browser to view.

    ``history``: the suite's earlier runs (oldest first, this one last) for the history chart;
    ``drift``: each drift check's points over those runs (``pytest_llmops.history.drift_trend``).
    """
    verdict = c.run_verdict(run)
    model = run.settings.get("model") or "-"
    body = "".join((_gates(run), _counts(run), _robust(run), _matrices(run), _comparison(run.comparison),
                    _history(history), _drift_over_time(drift or {}), _score_charts(run), _latency(run), _cases(run)))
    version = run.environment.packages.get("pytest-llmops", "")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(f'{verdict.word}: pytest-llmops report for {model}')}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"{_header(run)}<main>{body}</main>"
        f"<footer>Generated by pytest-llmops {_e(version)} from the run of {_e(c.when(run.started_at))}. "
        "This file is self-contained: it loads nothing from the network.</footer>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
