"""Drift reports: the tests, the clusters that moved and a picture, as PNG and self-contained HTML.

:func:`build_report` runs the drift tests, clusters both samples and projects
them to 2-D; :func:`render_png` draws baseline against current (a scatter
with cluster numbers, and each cluster's share in both samples);
:func:`render_html` writes one HTML file with the picture inlined as a data
URI, so it opens anywhere, offline, with no other file.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import need, package_version
from pytest_llmops.drift.result import DriftResult

if TYPE_CHECKING:
    import numpy

    from pytest_llmops.drift.clusters import ClusterReport
    from pytest_llmops.drift.embedders import Embedder

_BASELINE_COLOUR = "#4c78a8"
_CURRENT_COLOUR = "#f58518"


@dataclass(frozen=True, eq=False)
class DriftReport:
    """Everything a drift picture or page shows.

    With several methods each test runs at ``alpha / len(methods)``
    (Bonferroni), so the report's overall false-alarm rate stays at ``alpha``.
    """

    title: str
    results: tuple[DriftResult, ...]
    clusters: ClusterReport | None
    coords_current: numpy.ndarray = field(repr=False)
    coords_baseline: numpy.ndarray = field(repr=False)
    projection: str
    current_label: str
    baseline_label: str
    embedder: str | None
    alpha: float
    notes: tuple[str, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def drifted(self) -> bool:
        return any(result.drifted for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "drifted": self.drifted,
            "alpha": self.alpha,
            "created": self.created,
            "current": self.current_label,
            "baseline": self.baseline_label,
            "embedder": self.embedder,
            "projection": self.projection,
            "results": [result.to_dict() for result in self.results],
            "clusters": self.clusters.to_dict() if self.clusters is not None else None,
            "notes": list(self.notes),
            "package_version": package_version(),
        }


def build_report(
    current: Any,
    baseline: Any,
    *,
    methods: Sequence[str] = ("mmd",),
    alpha: float = 0.05,
    seed: int = 0,
    n_permutations: int | None = None,
    embedder: Embedder | None = None,
    projection: str = "pca",
    algorithm: str = "kmeans",
    n_clusters: int | None = None,
    judge: Any = None,
    title: str = "Embedding drift",
    notes: Sequence[str] = (),
) -> DriftReport:
    """Run ``methods`` on the two samples, cluster and project them, and gather a :class:`DriftReport`."""
    np = need("numpy", "numpy", purpose="drift reports")
    from pytest_llmops.drift.clusters import explain_clusters
    from pytest_llmops.drift.methods import drift_test
    from pytest_llmops.drift.projection import project_2d
    from pytest_llmops.drift.samples import prepare

    if not methods:
        raise ValueError("build_report needs at least one method (e.g. methods=('mmd',))")
    cur, base = prepare(current, baseline, embedder=embedder)
    per_test = alpha / len(methods)
    results = tuple(
        drift_test(
            cur, base, method, alpha=per_test, seed=seed, n_permutations=None if method == "ks" else n_permutations
        )
        for method in methods
    )
    clusters = explain_clusters(cur, base, algorithm=algorithm, n_clusters=n_clusters, seed=seed, judge=judge)
    coords, description = project_2d(np.concatenate([cur.vectors, base.vectors]), method=projection, seed=seed)
    return DriftReport(
        title=title,
        results=results,
        clusters=clusters,
        coords_current=coords[: cur.size],
        coords_baseline=coords[cur.size :],
        projection=description,
        current_label=f"{cur.label} ({cur.size})",
        baseline_label=f"{base.label} ({base.size})",
        embedder=cur.signature or base.signature,
        alpha=alpha,
        notes=tuple(notes),
    )


def png_bytes(report: DriftReport, *, dpi: int = 110) -> bytes:
    """The report's picture as PNG bytes: the 2-D scatter and the cluster shares side by side."""
    need("matplotlib", "matplotlib", purpose="drift pictures")
    np = need("numpy", "numpy", purpose="drift pictures")
    # A bare Figure renders through Agg without pyplot: no GUI backend, no global state.
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    figure = Figure(figsize=(12, 5.2), dpi=dpi, layout="constrained")
    scatter, bars = figure.subplots(1, 2, width_ratios=(1.25, 1))
    scatter.scatter(
        *report.coords_baseline.T,
        s=9,
        alpha=0.45,
        color=_BASELINE_COLOUR,
        label=f"baseline: {report.baseline_label}",
        linewidths=0,
    )
    scatter.scatter(
        *report.coords_current.T,
        s=9,
        alpha=0.55,
        color=_CURRENT_COLOUR,
        label=f"current: {report.current_label}",
        linewidths=0,
    )
    clusters = report.clusters
    if clusters is not None:
        labels = np.concatenate([clusters.labels_current, clusters.labels_baseline])
        coords = np.concatenate([report.coords_current, report.coords_baseline])
        for shift in clusters.clusters:
            if shift.cluster < 0:
                continue
            centre = coords[labels == shift.cluster].mean(axis=0)
            scatter.annotate(
                str(shift.cluster),
                centre,
                ha="center",
                va="center",
                fontsize=9,
                fontweight="bold",
                bbox={"boxstyle": "circle,pad=0.25", "facecolor": "white", "edgecolor": "#333333", "alpha": 0.85},
            )
        ordered = sorted(clusters.clusters, key=lambda c: c.cluster)
        rows = np.arange(len(ordered))
        bars.barh(rows - 0.2, [c.share_baseline for c in ordered], height=0.4, color=_BASELINE_COLOUR, label="baseline")
        bars.barh(rows + 0.2, [c.share_current for c in ordered], height=0.4, color=_CURRENT_COLOUR, label="current")
        bars.set_yticks(rows, [_bar_label(c) for c in ordered], fontsize=8)
        bars.invert_yaxis()
        bars.xaxis.set_major_formatter(PercentFormatter(1.0))
        bars.set_title(f"share of each sample per cluster ({clusters.algorithm})", fontsize=10)
        bars.legend(fontsize=8, loc="lower right")
    else:
        bars.set_axis_off()
    scatter.set_title(f"{report.projection} of both samples", fontsize=10)
    scatter.legend(fontsize=8, loc="best", markerscale=2)
    scatter.set_xticks([])
    scatter.set_yticks([])
    verdict = "DRIFT" if report.drifted else "no drift"
    tests = "; ".join(f"{r.method} p={r.p_value:.3g}" for r in report.results)
    figure.suptitle(f"{report.title}: {verdict} ({tests})", fontsize=12)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bar_label(shift: Any) -> str:
    label = "noise" if shift.cluster < 0 else f"{shift.cluster}"
    words = shift.name or ", ".join(shift.top_terms[:3])
    if words:
        label += f" {words}"
    return label if len(label) <= 38 else label[:37] + "…"


def render_png(report: DriftReport, path: str | os.PathLike[str]) -> Path:
    """Write the report's picture to ``path`` (PNG) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png_bytes(report))
    return target


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.verdict{display:inline-block;padding:.35rem .8rem;border-radius:.3rem;font-weight:600;color:#fff}
.drift{background:#c0392b}.stable{background:#27ae60}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#c0392b;font-weight:600}.down{color:#2c6fbb;font-weight:600}
.sig{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.75rem;color:#666;word-break:break-all}
img{max-width:100%;border:1px solid #eee}ul.ex{margin:0;padding-left:1.1rem}.muted{color:#666}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def html_text(report: DriftReport, *, picture: bytes | None = None) -> str:
    """The report as one self-contained HTML page (the PNG inlined as a data URI)."""
    image = picture if picture is not None else png_bytes(report)
    verdict = (
        '<span class="verdict drift">Drift detected</span>'
        if report.drifted
        else '<span class="verdict stable">No drift</span>'
    )
    per_test = report.results[0].alpha if report.results else report.alpha
    rows = []
    for result in report.results:
        state = "drift" if result.drifted else "no drift"
        rows.append(
            f"<tr><td>{_e(result.method)}</td><td>{_e(result.statistic_name)}</td><td class=num>{result.statistic:.4g}</td>"
            f"<td class=num>{result.p_value:.4g}</td><td class=num>{result.alpha:.4g}</td><td>{state}</td>"
            f"<td class=num>{result.n_current}</td><td class=num>{result.n_baseline}</td></tr>"
        )
    effect = report.results[0].details if report.results else {}
    effect_line = ""
    if "centroid_euclidean" in effect:
        effect_line = (
            f"<p>The current centroid is {effect['centroid_euclidean']:.4g} from the baseline's (Euclidean; "
            f"{effect['relative_shift']:.2f} × the baseline's spread of {effect['baseline_spread']:.4g}); "
            f"cosine distance between centroids {effect['centroid_cosine_distance']:.4g}.</p>"
        )
    cluster_rows = []
    clusters = report.clusters
    for shift in clusters.clusters if clusters is not None else ():
        direction = "up" if shift.change > 0 else "down"
        examples = "".join(f"<li>{_e(t)}</li>" for t in shift.examples_current[:2]) or "<li class=muted>-</li>"
        old = "".join(f"<li>{_e(t)}</li>" for t in shift.examples_baseline[:2]) or "<li class=muted>-</li>"
        cluster_rows.append(
            f"<tr><td>{'noise' if shift.cluster < 0 else shift.cluster}</td><td>{_e(shift.name or '')}</td>"
            f"<td>{_e(', '.join(shift.top_terms))}</td><td class=num>{shift.share_baseline:.1%}</td>"
            f"<td class=num>{shift.share_current:.1%}</td><td class='num {direction}'>{shift.change * 100:+.1f} pts</td>"
            f"<td><ul class=ex>{examples}</ul></td><td><ul class=ex>{old}</ul></td></tr>"
        )
    cluster_section = ""
    if clusters is not None:
        cluster_section = (
            f"<h2>Clusters ({_e(clusters.algorithm)}), most changed first</h2>"
            f"<p class=muted>Test of equal cluster shares: χ² = {clusters.chi2:.4g}, p = {clusters.p_value:.4g}. "
            f"{_e(clusters.naming)}</p>"
            "<table><tr><th>cluster</th><th>name</th><th>top terms</th><th>baseline</th><th>current</th>"
            "<th>change</th><th>current examples</th><th>baseline examples</th></tr>"
            + "".join(cluster_rows)
            + "</table>"
        )
    notes = "".join(f"<li>{_e(note)}</li>" for note in report.notes)
    signatures = "".join(f"<li class=sig>{_e(r.signature)}</li>" for r in report.results)
    encoded = base64.b64encode(image).decode("ascii")
    split = f" (each of {len(report.results)} tests at {per_test:.3g})" if len(report.results) > 1 else ""
    samples = (
        f"Current: <b>{_e(report.current_label)}</b> · Baseline: <b>{_e(report.baseline_label)}</b> · "
        f"Embedder: <span class=sig>{_e(report.embedder or 'not recorded')}</span>"
    )
    head = "".join(
        f"<th>{name}</th>"
        for name in ("method", "statistic", "value", "p-value", "alpha", "verdict", "n current", "n baseline")
    )
    alt = f"{report.projection} of baseline and current embeddings, with cluster shares"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(report.title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_e(report.title)}</h1>
<p>{verdict} <span class=muted>at alpha {report.alpha:g}{split}; {_e(report.created)}</span></p>
<p>{samples}</p>
<h2>Tests</h2>
<table><tr>{head}</tr>
{"".join(rows)}</table>
{effect_line}
<h2>Baseline and current, projected</h2>
<img alt="{_e(alt)}" src="data:image/png;base64,{encoded}">
{cluster_section}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Signatures</h2><ul>{signatures}</ul>
<p class=muted>pytest-llmops {_e(package_version())}</p>
</body></html>
"""


def render_html(report: DriftReport, path: str | os.PathLike[str]) -> Path:
    """Write the report as one self-contained HTML file and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_text(report), encoding="utf-8")
    return target
