"""Embedding drift: statistical tests, baselines on disk, production logs, pictures.

* Tests (:func:`drift_test`, or each on its own): ``mmd`` (MMD² with an RBF
  kernel and a permutation test, the default), ``mmd-exact``, ``centroid``,
  ``centroid-cosine``, ``classifier`` (domain-classifier ROC AUC) and ``ks``
  (share of drifted dimensions). Each returns an immutable
  :class:`DriftResult`.
* Baselines (:func:`save_baseline`, :func:`load_baseline`): embeddings plus
  metadata under ``.llmops/baselines/``; samples from different embedders are
  never compared.
* Logs (:func:`read_log`, :func:`select_window`): JSONL prompt/response
  records, windows by time or count; ``llmops drift check`` runs on them.
* Explanations and pictures (:func:`explain_clusters`, :func:`build_report`,
  :func:`render_png`, :func:`render_html`).

The names below load on first access: importing this package pulls in no
numpy, scipy or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DriftResult": "pytest_llmops.drift.result",
    "DriftInputError": "pytest_llmops.drift.result",
    "InsufficientDataError": "pytest_llmops.drift.result",
    "EmbedderMismatchError": "pytest_llmops.drift.result",
    "METHODS": "pytest_llmops.drift.methods",
    "drift_test": "pytest_llmops.drift.methods",
    "mmd_test": "pytest_llmops.drift.mmd",
    "mmd_exact_test": "pytest_llmops.drift.mmd",
    "centroid_test": "pytest_llmops.drift.centroid",
    "centroid_shift": "pytest_llmops.drift.centroid",
    "classifier_test": "pytest_llmops.drift.classifier",
    "ks_test": "pytest_llmops.drift.components",
    "Embedder": "pytest_llmops.drift.embedders",
    "MiniLMEmbedder": "pytest_llmops.drift.embedders",
    "HashingEmbedder": "pytest_llmops.drift.embedders",
    "default_embedder": "pytest_llmops.drift.embedders",
    "resolve_embedder": "pytest_llmops.drift.embedders",
    "EmbeddingSample": "pytest_llmops.drift.samples",
    "as_sample": "pytest_llmops.drift.samples",
    "Baseline": "pytest_llmops.drift.baseline",
    "BaselineInfo": "pytest_llmops.drift.baseline",
    "BaselineError": "pytest_llmops.drift.baseline",
    "save_baseline": "pytest_llmops.drift.baseline",
    "load_baseline": "pytest_llmops.drift.baseline",
    "list_baselines": "pytest_llmops.drift.baseline",
    "set_state_dir": "pytest_llmops.drift.baseline",
    "LogRecord": "pytest_llmops.drift.logs",
    "LogFile": "pytest_llmops.drift.logs",
    "LogFormatError": "pytest_llmops.drift.logs",
    "read_log": "pytest_llmops.drift.logs",
    "select_window": "pytest_llmops.drift.logs",
    "iter_windows": "pytest_llmops.drift.logs",
    "ClusterReport": "pytest_llmops.drift.clusters",
    "ClusterShift": "pytest_llmops.drift.clusters",
    "explain_clusters": "pytest_llmops.drift.clusters",
    "project_2d": "pytest_llmops.drift.projection",
    "DriftReport": "pytest_llmops.drift.report",
    "build_report": "pytest_llmops.drift.report",
    "render_png": "pytest_llmops.drift.report",
    "render_html": "pytest_llmops.drift.report",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from pytest_llmops.drift.baseline import (
        Baseline,
        BaselineError,
        BaselineInfo,
        list_baselines,
        load_baseline,
        save_baseline,
        set_state_dir,
    )
    from pytest_llmops.drift.centroid import centroid_shift, centroid_test
    from pytest_llmops.drift.classifier import classifier_test
    from pytest_llmops.drift.clusters import (
        ClusterReport,
        ClusterShift,
        explain_clusters,
    )
    from pytest_llmops.drift.components import ks_test
    from pytest_llmops.drift.embedders import (
        Embedder,
        HashingEmbedder,
        MiniLMEmbedder,
        default_embedder,
        resolve_embedder,
    )
    from pytest_llmops.drift.logs import (
        LogFile,
        LogFormatError,
        LogRecord,
        iter_windows,
        read_log,
        select_window,
    )
    from pytest_llmops.drift.methods import METHODS, drift_test
    from pytest_llmops.drift.mmd import mmd_exact_test, mmd_test
    from pytest_llmops.drift.projection import project_2d
    from pytest_llmops.drift.report import (
        DriftReport,
        build_report,
        render_html,
        render_png,
    )
    from pytest_llmops.drift.result import (
        DriftInputError,
        DriftResult,
        EmbedderMismatchError,
        InsufficientDataError,
    )
    from pytest_llmops.drift.samples import EmbeddingSample, as_sample
