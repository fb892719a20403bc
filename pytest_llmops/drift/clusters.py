"""Which clusters moved: cluster both samples together and compare each cluster's share.

A drift test says *that* the distribution changed; this says *where*. The
pooled vectors are clustered (k-means on a PCA reduction, or HDBSCAN, from
scikit-learn); each cluster's share of the baseline is compared with its
share of the current sample. A cluster that grew from 2% to 30% is what
changed. When texts are known, each cluster is described by its top terms
(TF-IDF) and a few examples, and a judge model, when given, names it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmops.drift._deps import blas_threads, need
from pytest_llmops.drift.result import DriftInputError
from pytest_llmops.drift.samples import prepare
from pytest_llmops.verdict import UnmeasuredError

if TYPE_CHECKING:
    import numpy

ALGORITHMS = ("kmeans", "hdbscan")
#: Largest number of clusters chosen automatically.
MAX_AUTO_CLUSTERS = 8
_NAME_PROMPT = """You are labelling one cluster of texts found in an application's logs.

Terms typical of the cluster: {terms}

Example texts from the cluster:
{examples}

Reply with a short name for what these texts have in common (2 to 6 words), and nothing else."""


@dataclass(frozen=True)
class ClusterShift:
    """One cluster: how big it is in each sample, how much its share changed, what it is about.

    ``share_*`` are fractions of each sample; ``change`` is current minus
    baseline share; ``residual`` the standardised (Pearson) residual of the
    current count, so clusters of very different sizes can be ranked fairly.
    """

    cluster: int
    count_current: int
    count_baseline: int
    share_current: float
    share_baseline: float
    change: float
    residual: float
    top_terms: tuple[str, ...] = ()
    examples_current: tuple[str, ...] = ()
    examples_baseline: tuple[str, ...] = ()
    name: str | None = None

    @property
    def title(self) -> str:
        """``cluster 3 "German questions" [die, und, ist]`` (name and terms when known)."""
        text = "noise" if self.cluster < 0 else f"cluster {self.cluster}"
        if self.name:
            text += f" {self.name!r}"
        if self.top_terms:
            text += f" [{', '.join(self.top_terms[:5])}]"
        return text

    def describe(self) -> str:
        return (
            f"{self.title}: {self.share_baseline:.1%} -> {self.share_current:.1%} "
            f"({self.change * 100:+.1f} pts; {self.count_baseline} -> {self.count_current} vectors)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "name": self.name,
            "count_current": self.count_current,
            "count_baseline": self.count_baseline,
            "share_current": self.share_current,
            "share_baseline": self.share_baseline,
            "change": self.change,
            "residual": self.residual,
            "top_terms": list(self.top_terms),
            "examples_current": list(self.examples_current),
            "examples_baseline": list(self.examples_baseline),
        }


@dataclass(frozen=True, eq=False)
class ClusterReport:
    """Clusters of the pooled samples, most changed first, with a test of "same cluster shares"."""

    algorithm: str
    clusters: tuple[ClusterShift, ...]
    labels_current: numpy.ndarray = field(repr=False)
    labels_baseline: numpy.ndarray = field(repr=False)
    chi2: float
    p_value: float
    naming: str = ""

    def moved(self, min_change: float = 0.05) -> list[ClusterShift]:
        """Clusters whose share changed by at least ``min_change`` (0.05 = five points), most changed first."""
        return [c for c in self.clusters if abs(c.change) >= min_change]

    def describe(self, limit: int = 3, min_change: float = 0.02) -> list[str]:
        """Lines for a failure message: the clusters that moved most."""
        moved = self.moved(min_change)[:limit]
        if not moved:
            return [f"no cluster's share changed by {min_change:.0%} or more ({self.algorithm})"]
        header = f"clusters that moved ({self.algorithm} over both samples; share of baseline -> current):"
        return [header, *(f"  {c.describe()}" for c in moved)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "chi2": self.chi2,
            "p_value": self.p_value,
            "naming": self.naming,
            "clusters": [c.to_dict() for c in self.clusters],
        }


def _reduce(pooled: numpy.ndarray, seed: int, dims: int = 50) -> numpy.ndarray:
    decomposition = need("sklearn.decomposition", "scikit-learn", purpose="drift cluster explanations")
    components = min(dims, pooled.shape[1], pooled.shape[0] - 1)
    if components < pooled.shape[1] and components >= 2:
        return decomposition.PCA(n_components=components, random_state=seed).fit_transform(pooled)
    return pooled


def cluster_labels(
    pooled: numpy.ndarray, *, algorithm: str = "kmeans", n_clusters: int | None = None, seed: int = 0
) -> tuple[numpy.ndarray, str]:
    """Cluster labels of the pooled vectors and a description of how they were found.

    k-means runs on a PCA reduction to at most 50 dimensions; ``n_clusters``
    defaults to one cluster per 25 vectors, between 2 and 8. HDBSCAN labels
    outliers -1 ("noise").
    """
    cluster = need("sklearn.cluster", "scikit-learn", purpose="drift cluster explanations")
    size = pooled.shape[0]
    if algorithm not in ALGORITHMS:
        raise DriftInputError(f"cluster algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    reduced = _reduce(pooled, seed)
    if algorithm == "hdbscan":
        smallest = max(5, size // 50)
        labels = cluster.HDBSCAN(min_cluster_size=smallest, copy=True).fit_predict(reduced)
        return labels, f"HDBSCAN (min cluster size {smallest})"
    k = n_clusters if n_clusters is not None else max(2, min(MAX_AUTO_CLUSTERS, size // 25))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DriftInputError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    k = min(k, size)
    labels = cluster.KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(reduced)
    return labels, f"k-means, {k} clusters"


def top_terms(texts: Sequence[str], labels: numpy.ndarray, *, limit: int = 5) -> dict[int, tuple[str, ...]]:
    """The terms that set each cluster's texts apart: mean TF-IDF in the cluster minus overall."""
    np = need("numpy", "numpy", purpose="drift cluster explanations")
    text_module = need("sklearn.feature_extraction.text", "scikit-learn", purpose="cluster top terms")
    try:
        matrix = text_module.TfidfVectorizer(
            stop_words="english", max_features=20000, sublinear_tf=True, token_pattern=r"(?u)\b[^\W\d_]{2,}\b"
        ).fit(texts)
    except ValueError:  # no usable word at all (empty texts, stop words only)
        return {}
    weights = matrix.transform(texts)
    vocabulary = np.asarray(matrix.get_feature_names_out())
    overall = np.asarray(weights.mean(axis=0)).ravel()
    found = {}
    for label in np.unique(labels):
        inside = np.asarray(weights[labels == label].mean(axis=0)).ravel() - overall
        best = np.argsort(-inside, kind="stable")[:limit]
        found[int(label)] = tuple(str(vocabulary[i]) for i in best if inside[i] > 0)
    return found


def _examples(
    texts: tuple[str, ...] | None, labels: numpy.ndarray, label: int, limit: int, width: int = 160
) -> tuple[str, ...]:
    if texts is None:
        return ()
    picked = [texts[i] for i in range(len(texts)) if labels[i] == label][:limit]
    return tuple(" ".join(t.split())[:width] for t in picked)


def _ask(judge: Any, prompt: str) -> str:
    """One answer from ``judge``: an object with ``complete_sync``/``complete``, or a callable; sync or async."""
    if hasattr(judge, "complete_sync"):
        answer = judge.complete_sync(prompt)
    elif hasattr(judge, "complete"):
        answer = judge.complete(prompt)
    elif callable(judge):
        answer = judge(prompt)
    else:
        raise DriftInputError(f"judge {judge!r} is neither a model client (complete_sync) nor a callable")
    if inspect.isawaitable(answer):
        answer = _run_coroutine(answer)
    return str(getattr(answer, "text", answer))


def _run_coroutine(awaitable: Any) -> Any:
    async def wrapper() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapper())
    # Inside a running loop (an async test): run it to completion on a helper thread's own loop.
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(wrapper())
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="llmops-cluster-namer")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _clean_name(answer: str) -> str:
    line = next((part.strip() for part in answer.strip().splitlines() if part.strip()), "")
    line = line.strip().strip("\"'`*").strip()
    for prefix in ("Name:", "name:", "Cluster name:"):
        if line.startswith(prefix):
            line = line[len(prefix) :].strip()
    return line[:60]


def name_clusters(clusters: Sequence[ClusterShift], judge: Any, *, limit: int = 5) -> tuple[list[ClusterShift], str]:
    """Ask ``judge`` for a short name of up to ``limit`` clusters (most changed first).

    A judge that cannot answer (unconfigured, provider down) leaves the
    clusters unnamed; the returned note says why.
    """
    from dataclasses import replace

    named = list(clusters)
    for index, cluster in enumerate(named[:limit]):
        if not cluster.top_terms and not cluster.examples_current and not cluster.examples_baseline:
            continue
        examples = (cluster.examples_current + cluster.examples_baseline)[:6]
        prompt = _NAME_PROMPT.format(
            terms=", ".join(cluster.top_terms) or "(none)",
            examples="\n".join(f"- {text}" for text in examples) or "- (no texts)",
        )
        try:
            answer = _clean_name(_ask(judge, prompt))
        except UnmeasuredError as error:
            return named, f"clusters not named: the judge could not answer ({error.reason})"
        except RuntimeError as error:  # e.g. a sync model call made inside an async test's event loop
            return named, f"clusters not named: {error}"
        if answer:
            named[index] = replace(cluster, name=answer)
    return named, "named by the judge"


def explain_clusters(
    current: Any,
    baseline: Any,
    *,
    algorithm: str = "kmeans",
    n_clusters: int | None = None,
    seed: int = 0,
    judge: Any = None,
    terms: int = 5,
    examples: int = 3,
    embedder: Any = None,
) -> ClusterReport:
    """Cluster both samples together and report how each cluster's share changed.

    ``current`` and ``baseline`` are anything :func:`prepare` accepts (texts
    are embedded with ``embedder``, MiniLM by default); texts (from lists of
    texts or baselines saved with texts) give top terms and examples.
    ``judge`` (a model client or ``callable(prompt) -> str``) names the most
    changed clusters. Clusters come most changed first, by the size of their
    standardised residual.
    """
    np = need("numpy", "numpy", purpose="drift cluster explanations")
    stats = need("scipy.stats", "scipy", purpose="drift cluster explanations")
    cur, base = prepare(current, baseline, embedder=embedder)
    n, m = cur.size, base.size
    with blas_threads():
        labels, description = cluster_labels(
            np.concatenate([cur.vectors, base.vectors]), algorithm=algorithm, n_clusters=n_clusters, seed=seed
        )
    labels_current, labels_baseline = labels[:n], labels[n:]
    terms_of: dict[int, tuple[str, ...]] = {}
    if cur.texts is not None or base.texts is not None:
        # Top terms from whichever samples have texts, with their cluster labels.
        known = [(cur.texts, labels_current), (base.texts, labels_baseline)]
        all_texts = [text for texts, _ in known if texts is not None for text in texts]
        all_labels = np.concatenate([labels for texts, labels in known if texts is not None])
        terms_of = top_terms(all_texts, all_labels, limit=terms)
    unique = np.unique(labels)
    counts_current = np.array([(labels_current == u).sum() for u in unique])
    counts_baseline = np.array([(labels_baseline == u).sum() for u in unique])
    table = np.vstack([counts_current, counts_baseline])
    if unique.size > 1:
        chi2, p_value, _, expected = stats.chi2_contingency(table, correction=False)
        residuals = (counts_current - expected[0]) / np.sqrt(np.where(expected[0] > 0, expected[0], 1.0))
    else:
        chi2, p_value, residuals = 0.0, 1.0, np.zeros(1)
    shifts = [
        ClusterShift(
            cluster=int(u),
            count_current=int(counts_current[i]),
            count_baseline=int(counts_baseline[i]),
            share_current=float(counts_current[i] / n),
            share_baseline=float(counts_baseline[i] / m),
            change=float(counts_current[i] / n - counts_baseline[i] / m),
            residual=float(residuals[i]),
            top_terms=terms_of.get(int(u), ()),
            examples_current=_examples(cur.texts, labels_current, int(u), examples),
            examples_baseline=_examples(base.texts, labels_baseline, int(u), examples),
        )
        for i, u in enumerate(unique)
    ]
    shifts.sort(key=lambda c: (-abs(c.residual), c.cluster))
    naming = ""
    if judge is not None:
        shifts, naming = name_clusters(shifts, judge)
    return ClusterReport(
        algorithm=description,
        clusters=tuple(shifts),
        labels_current=labels_current,
        labels_baseline=labels_baseline,
        chi2=float(chi2),
        p_value=float(p_value),
        naming=naming,
    )
