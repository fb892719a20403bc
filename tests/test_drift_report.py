"""Clusters that moved, 2-D projections, and the PNG / HTML views of baseline against current."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from pytest_llmops.drift import HashingEmbedder, build_report, explain_clusters, project_2d, render_html, render_png
from pytest_llmops.drift._deps import MissingDependencyError


def blobs(rng, centres, counts, dim=12):
    """Points around the given centre indices (one-hot directions scaled by 5), with their labels."""
    rows, labels = [], []
    for centre, count in zip(centres, counts, strict=True):
        mean = np.zeros(dim)
        mean[centre] = 5.0
        rows.append(rng.normal(size=(count, dim)) + mean)
        labels += [centre] * count
    return np.vstack(rows), labels


def test_the_new_cluster_is_reported_first_with_its_shares():
    rng = np.random.default_rng(0)
    baseline, _ = blobs(rng, [0, 1], [60, 60])
    current, _ = blobs(rng, [0, 1, 2], [30, 30, 60])
    report = explain_clusters(current, baseline, n_clusters=3)
    top = report.clusters[0]
    assert (top.count_baseline, top.count_current) == (0, 60)
    assert top.share_current == pytest.approx(0.5) and top.change == pytest.approx(0.5)
    assert top.residual > 3
    assert report.p_value < 1e-6
    assert [c.cluster for c in report.moved(0.2)] == [
        top.cluster,
        *[c.cluster for c in report.clusters[1:] if abs(c.change) >= 0.2],
    ]
    assert sum(c.count_current for c in report.clusters) == 120


def test_clusters_of_texts_get_top_terms_and_examples():
    baseline = ["reset my password", "forgot my password again", "password reset link broken"] * 10
    current = ["reset my password"] * 10 + ["invoice shows the wrong amount", "send me the invoice pdf"] * 10
    report = explain_clusters(current, baseline, n_clusters=2, seed=1, embedder=HashingEmbedder(128))
    grown = max(report.clusters, key=lambda c: c.change)
    assert "invoice" in grown.top_terms
    assert all("invoice" in text for text in grown.examples_current)
    assert grown.examples_baseline == ()
    assert "invoice" in report.describe()[1]


def test_hdbscan_marks_outliers_as_noise():
    rng = np.random.default_rng(2)
    baseline, _ = blobs(rng, [0, 1], [80, 80])
    current = np.vstack([blobs(rng, [0, 1], [70, 70])[0], rng.uniform(-40, 40, size=(3, 12))])
    report = explain_clusters(current, baseline, algorithm="hdbscan")
    assert report.algorithm.startswith("HDBSCAN")
    assert {c.cluster for c in report.clusters} >= {0, 1}


def test_projection_is_pca_by_default_and_umap_is_optional():
    points = np.random.default_rng(3).normal(size=(50, 8))
    coords, description = project_2d(points)
    assert coords.shape == (50, 2) and description.startswith("PCA (")
    if importlib.util.find_spec("umap") is None:
        with pytest.raises(MissingDependencyError, match="pip install 'umap-learn'"):
            project_2d(points, method="umap")


@pytest.fixture(scope="module")
def report():
    texts_b = [f"refund request number {i}" for i in range(40)] + [f"shipping delay for order {i}" for i in range(40)]
    texts_c = [f"refund request number {i}" for i in range(20)] + ["<script>alert('x')</script> hacked"] * 30
    return build_report(
        texts_c,
        texts_b,
        methods=("mmd", "centroid"),
        embedder=HashingEmbedder(128),
        n_clusters=3,
        title="Support prompts",
        notes=("window: last 50",),
    )


def test_report_runs_every_method_with_a_shared_false_alarm_rate(report):
    assert report.drifted
    assert [r.method for r in report.results] == ["mmd", "centroid"]
    assert all(r.alpha == pytest.approx(0.025) for r in report.results)
    assert report.embedder == HashingEmbedder(128).signature
    assert report.coords_current.shape == (50, 2) and report.coords_baseline.shape == (80, 2)
    assert report.to_dict()["clusters"]["clusters"][0]["share_baseline"] == 0.0


def test_png_is_a_real_picture(report, tmp_path):
    path = render_png(report, tmp_path / "pics" / "drift.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 800 and height > 400


def test_html_is_self_contained_and_escapes_texts(report, tmp_path):
    page = render_html(report, tmp_path / "drift.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Drift detected" in page and "Support prompts" in page and "window: last 50" in page
    assert re.search(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)
    # Nothing is fetched from elsewhere: no external script, stylesheet, image or font.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page
    # Log texts are shown, never executed.
    assert "<script>" not in page and "&lt;script&gt;" in page
