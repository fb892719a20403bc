"""Two-dimensional projections of embeddings, for pictures: PCA (default) or UMAP.

The projection is fitted on both samples together, so baseline and current
land in the same plane. UMAP (the ``umap-learn`` package, optional) keeps
local neighbourhoods better; PCA is fast, deterministic and needs nothing
beyond scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops.drift._deps import blas_threads, need
from pytest_llmops.drift.result import DriftInputError

if TYPE_CHECKING:
    import numpy

PROJECTIONS = ("pca", "umap")


def project_2d(vectors: numpy.ndarray, *, method: str = "pca", seed: int = 0) -> tuple[numpy.ndarray, str]:
    """Coordinates of shape ``(n, 2)`` and a description such as ``"PCA (31% of variance)"``."""
    np = need("numpy", "numpy", purpose="drift pictures")
    if method not in PROJECTIONS:
        raise DriftInputError(f"projection must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    points = np.asarray(vectors, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < 3:
        raise DriftInputError(f"a 2-D projection needs at least 3 vectors, got shape {points.shape}")
    if points.shape[1] == 1:
        return np.column_stack([points[:, 0], np.zeros(points.shape[0])]), "the single dimension"
    with blas_threads():
        if method == "umap":
            umap = need("umap", "umap-learn", purpose="UMAP projections (or use projection='pca')")
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, points.shape[0] - 1), random_state=seed)
            return np.asarray(reducer.fit_transform(points), dtype=np.float64), "UMAP"
        decomposition = need("sklearn.decomposition", "scikit-learn", purpose="drift pictures")
        pca = decomposition.PCA(n_components=2, random_state=seed)
        coords = pca.fit_transform(points)
        explained = float(pca.explained_variance_ratio_.sum())
        return coords, f"PCA ({explained:.0%} of variance)"
