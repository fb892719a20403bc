"""Drift assertions: fail a test when embeddings moved away from a baseline.

::

    from pytest_llmops.assertions.drift import assert_no_drift

    def test_prompts_still_look_like_last_release(production_prompts):
        assert_no_drift(production_prompts, "support-prompts", method="mmd", alpha=0.05)

``current`` is a list of texts (embedded by the configured embedder, the
offline MiniLM by default) or an array of embeddings; ``baseline`` is the same,
or a saved baseline (its name, its path, or a :class:`Baseline`). A failure
says how far the sample moved and which clusters grew or shrank; too few
vectors end the check unmeasured, never a silent pass. Each helper records a
``Score`` whose ``details`` hold the full drift result.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pytest_llmops.case import require
from pytest_llmops.drift.result import DriftResult, InsufficientDataError
from pytest_llmops.verdict import Score, hide_check_frames

# A failing check is shown from the test's line (see verdict.hide_check_frames).
__tracebackhide__ = hide_check_frames

__all__ = ["assert_no_drift", "assert_centroid_within", "assert_log_no_drift"]


def _resolve_baseline(baseline: Any, root: str | os.PathLike[str] | None) -> Any:
    """A baseline given by name or path is loaded; anything else is used as it is."""
    if isinstance(baseline, (str, os.PathLike)):
        from pytest_llmops.drift.baseline import load_baseline

        return load_baseline(baseline, root=root)
    return baseline


def _describe_input(value: Any) -> str:
    from pytest_llmops.drift.baseline import Baseline

    if isinstance(value, Baseline):
        return (
            f"baseline {value.name!r}: {value.info.count} vectors by {value.signature!r}, created {value.info.created}"
        )
    if isinstance(value, Sequence) and not isinstance(value, str) and value and all(isinstance(v, str) for v in value):
        return f"{len(value)} texts"
    shape = getattr(value, "shape", None)
    return f"array of shape {tuple(shape)}" if shape is not None else type(value).__name__


def _how_far(result: DriftResult) -> str:
    details = result.details
    text = (
        f"how far: the centroid moved {details['centroid_euclidean']:.4g} "
        f"({details['relative_shift']:.2f} x the baseline's spread; cosine distance "
        f"{details['centroid_cosine_distance']:.4g})"
    )
    if details.get("null_std"):
        text += f"; the {result.statistic_name} is {details['z']:.1f} standard deviations above chance"
    return text


def assert_no_drift(
    current: Any,
    baseline: Any,
    *,
    method: str = "mmd",
    alpha: float = 0.05,
    embedder: Any = None,
    seed: int = 0,
    n_permutations: int | None = None,
    explain: bool = True,
    judge: Any = None,
    n_clusters: int | None = None,
    root: str | os.PathLike[str] | None = None,
    keep_sample: int | None = None,
    **options: Any,
) -> Score:
    """Fail when ``current`` and ``baseline`` differ in distribution (drift test p-value below ``alpha``).

    ``method`` is one of ``mmd`` (default), ``mmd-exact``, ``centroid``,
    ``centroid-cosine``, ``classifier``, ``ks``; ``options`` go to it (e.g.
    ``model="logistic"`` for the classifier). ``embedder`` embeds texts (a
    callable with a ``signature``; MiniLM when ``None``). A baseline given as
    a name is loaded from the baselines folder under ``root`` (default: the
    project's ``.llmops``). On failure, with ``explain``, both samples are
    clustered and the message lists the clusters whose share moved most;
    ``judge`` (a model client or ``callable(prompt) -> str``) names them.

    The score's value is the p-value, its threshold ``alpha``. Its details
    also keep an embedding summary of ``current`` (the mean and a seeded
    sample of at most ``keep_sample`` rows, 128 by default; 0 keeps none), so
    the run history can recompute drift between any two runs later
    (``llmops history trend drift``).
    """
    from pytest_llmops.drift.methods import drift_test
    from pytest_llmops.drift.samples import prepare
    from pytest_llmops.drift.summary import SUMMARY_KEY, SUMMARY_ROWS, summarize

    name = f"drift.{method}"
    base = _resolve_baseline(baseline, root)
    inputs = {"current": _describe_input(current), "baseline": _describe_input(base)}
    try:
        cur, ref = prepare(current, base, embedder=embedder)
        result = drift_test(cur, ref, method, alpha=alpha, seed=seed, n_permutations=n_permutations, **options)
    except InsufficientDataError as error:
        return require(Score.unmeasured(name, f"not enough data for a drift test: {error}"), **inputs)
    details: dict[str, Any] = result.to_dict()
    rows = SUMMARY_ROWS if keep_sample is None else keep_sample
    if rows > 0:
        details[SUMMARY_KEY] = summarize(cur.vectors, embedder=cur.signature, rows=rows, seed=seed).to_dict()
    lines = [result.summary(), _how_far(result)]
    if result.drifted and explain:
        from pytest_llmops.drift.clusters import explain_clusters

        clusters = explain_clusters(cur, ref, seed=seed, judge=judge, n_clusters=n_clusters)
        lines.extend(clusters.describe())
        details["clusters"] = clusters.to_dict()
    score = Score.measured(
        name,
        result.p_value,
        threshold=alpha,
        higher_is_better=True,
        reason="\n  ".join(lines),
        signature=result.signature,
        details=details,
    )
    return require(score, **inputs)


def assert_centroid_within(
    current: Any,
    baseline: Any,
    max_distance: float,
    *,
    metric: str = "cosine",
    embedder: Any = None,
    root: str | os.PathLike[str] | None = None,
) -> Score:
    """Fail when the mean embedding moved more than ``max_distance`` from the baseline's.

    An effect-size check rather than a significance test: with large samples
    ``assert_no_drift`` flags shifts too small to matter, and this bounds how
    big a shift may be. ``metric`` is ``cosine`` (1 - cosine similarity of the
    centroids, default) or ``euclidean``; ``relative`` divides the Euclidean
    shift by the baseline's spread (RMS distance to its centroid), which makes
    one threshold fit embedders of any scale.
    """
    from pytest_llmops.drift._deps import blas_threads
    from pytest_llmops.drift.centroid import centroid_shift
    from pytest_llmops.drift.result import DriftInputError
    from pytest_llmops.drift.samples import prepare

    keys = {"cosine": "centroid_cosine_distance", "euclidean": "centroid_euclidean", "relative": "relative_shift"}
    if metric not in keys:
        raise DriftInputError(f"metric must be one of {', '.join(keys)}, got {metric!r}")
    if not max_distance >= 0:
        raise DriftInputError(f"max_distance must be a number >= 0, got {max_distance!r}")
    name = f"drift.centroid_{metric}"
    base = _resolve_baseline(baseline, root)
    inputs = {"current": _describe_input(current), "baseline": _describe_input(base)}
    try:
        cur, ref = prepare(current, base, embedder=embedder)
    except InsufficientDataError as error:
        return require(Score.unmeasured(name, f"not enough data: {error}"), **inputs)
    with blas_threads():
        shift = centroid_shift(cur.vectors, ref.vectors)
    value = shift[keys[metric]]
    reason = (
        f"centroid moved {shift['centroid_euclidean']:.4g} (Euclidean), {shift['relative_shift']:.3g} x the baseline's "
        f"spread, cosine distance {shift['centroid_cosine_distance']:.4g}; n current {cur.size}, baseline {ref.size}"
    )
    score = Score.measured(
        name,
        value,
        threshold=float(max_distance),
        higher_is_better=False,
        reason=reason,
        signature=f"drift:centroid-shift|metric:{metric}",
        details={**shift, "metric": metric, "n_current": cur.size, "n_baseline": ref.size},
    )
    return require(score, **inputs)


def assert_log_no_drift(
    log: str | os.PathLike[str],
    baseline: Any,
    *,
    field: str | None = None,
    last: int | None = None,
    since: Any = None,
    until: Any = None,
    duration: Any = None,
    allow_malformed: bool = False,
    method: str = "mmd",
    alpha: float = 0.05,
    embedder: Any = None,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Score:
    """``assert_no_drift`` on a window of a JSONL production log (see ``pytest_llmops.drift.logs``).

    ``field`` is ``prompt``, ``response`` or ``pair`` (default: the field the
    baseline was built from, else ``prompt``); the window is chosen as by
    ``select_window`` (``last``, ``since``, ``until``, ``duration``).
    Malformed lines fail the test with their line numbers unless
    ``allow_malformed``.
    """
    from pytest_llmops.drift.baseline import Baseline
    from pytest_llmops.drift.logs import read_log, select_window, window_texts

    base = _resolve_baseline(baseline, root)
    chosen = field or (base.info.text_field if isinstance(base, Baseline) else None) or "prompt"
    records = select_window(
        read_log(log, allow_malformed=allow_malformed).records, last=last, since=since, until=until, duration=duration
    )
    texts = window_texts(records, chosen)
    if len(texts) < 2:
        score = Score.unmeasured(
            f"drift.{method}", f"the log window holds {len(texts)} {chosen!r} text(s); need at least 2"
        )
        return require(score, log=os.fspath(log), baseline=_describe_input(base))
    return assert_no_drift(texts, base, method=method, alpha=alpha, embedder=embedder, seed=seed, **options)
