"""Corpus-level BLEU, chrF and TER over the cases of a group, gated as one number.

Corpus BLEU is not the mean of sentence BLEUs: it pools the n-gram counts of
every sentence. So each case of a parametrized test *collects* its
(hypothesis, references) pair into a named group, and the group is scored
once, at the end of the run, by sacrebleu's ``corpus_score``::

    @pytest.mark.parametrize("case", cases)
    def test_translation(case, llm):
        output = llm.complete_sync(case.prompt)
        collect_corpus_bleu(output, case.reference, group="en-de", min_score=25)

Collected pairs live in a process-wide :class:`CorpusRegistry`. The plugin
drives the end of the run:

* every process: nothing to do while tests run;
* xdist worker, at ``pytest_sessionfinish``: put ``export_corpus_state()``
  (plain JSON-ready dicts) into ``config.workeroutput``;
* xdist controller, at ``pytest_testnodedown``: ``merge_corpus_state(...)``
  with that worker's dict;
* controller (or the only process), at ``pytest_sessionfinish``:
  ``finalize_corpus_groups()`` returns one :class:`Score` per group.

Corpus statistics are sums over sentences, so the order in which workers'
pairs are merged does not change the score; pairs are still sorted by case
id before scoring so that runs are byte-for-byte reproducible.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_llmops.case import current_case
from pytest_llmops.metrics import _translation as translation
from pytest_llmops.metrics._inputs import as_references, as_text, check_number
from pytest_llmops.verdict import Score

#: Version of the dicts made by :meth:`CorpusRegistry.to_dict`.
STATE_VERSION = 1


@dataclass(frozen=True)
class CorpusPair:
    """One case's contribution to a corpus: its hypothesis and its references."""

    hypothesis: str
    references: tuple[str, ...]
    case: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"hypothesis": self.hypothesis, "references": list(self.references), "case": self.case}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorpusPair:
        return cls(str(data["hypothesis"]), tuple(data["references"]), data.get("case"))


@dataclass
class CorpusAccumulator:
    """The pairs of one named group, with the metric, options and threshold they are held to."""

    group: str
    metric: str
    options: dict[str, Any]
    threshold: float | None = None
    pairs: list[CorpusPair] = field(default_factory=list)

    def describe_config(self) -> str:
        return f"metric={self.metric}, threshold={self.threshold}, options={self.options}"

    def check_same_config(self, other: CorpusAccumulator) -> None:
        """Every case of a group must ask for the same metric, options and threshold."""
        if (self.metric, self.options, self.threshold) != (other.metric, other.options, other.threshold):
            raise ValueError(
                f"corpus group {self.group!r} is collected with two different settings: "
                f"({self.describe_config()}) and ({other.describe_config()}); "
                "use one setting for every case of a group, or give each setting its own group name"
            )

    def score(self) -> Score:
        """The group's corpus score (sacrebleu), named ``corpus_<metric>[<group>]``."""
        pairs = sorted(self.pairs, key=lambda p: (p.case or "", p.hypothesis, p.references))
        result = translation.corpus_score(
            self.metric,  # type: ignore[arg-type]
            [p.hypothesis for p in pairs],
            [p.references for p in pairs],
            threshold=self.threshold,
            name=f"corpus_{self.metric}[{self.group}]",
            **self.options,
        )
        cases = {p.case for p in pairs if p.case}
        return replace(result, details={**result.details, "group": self.group, "cases": len(cases)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "metric": self.metric,
            "options": dict(self.options),
            "threshold": self.threshold,
            "pairs": [p.to_dict() for p in self.pairs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorpusAccumulator:
        return cls(
            group=str(data["group"]),
            metric=str(data["metric"]),
            options=dict(data["options"]),
            threshold=data.get("threshold"),
            pairs=[CorpusPair.from_dict(p) for p in data.get("pairs", ())],
        )


class CorpusRegistry:
    """Named corpus groups of one process; thread-safe, serializable, mergeable."""

    def __init__(self) -> None:
        self._groups: dict[str, CorpusAccumulator] = {}
        self._lock = threading.Lock()

    def add(
        self, group: str, metric: str, options: Mapping[str, Any], threshold: float | None, pair: CorpusPair
    ) -> None:
        """Add ``pair`` to ``group``, creating it with this setting on first use."""
        incoming = CorpusAccumulator(group, metric, dict(options), threshold)
        with self._lock:
            existing = self._groups.setdefault(group, incoming)
            existing.check_same_config(incoming)
            existing.pairs.append(pair)

    def groups(self) -> list[str]:
        with self._lock:
            return sorted(self._groups)

    def get(self, group: str) -> CorpusAccumulator | None:
        with self._lock:
            return self._groups.get(group)

    def __len__(self) -> int:
        with self._lock:
            return len(self._groups)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: what an xdist worker sends to the controller."""
        with self._lock:
            return {"version": STATE_VERSION, "groups": [g.to_dict() for g in self._groups.values()]}

    def merge(self, state: Mapping[str, Any]) -> None:
        """Add the groups and pairs of another registry's :meth:`to_dict`."""
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"corpus state has version {version!r}, expected {STATE_VERSION}: "
                "every xdist worker must run the same pytest-llmops version"
            )
        incoming = [CorpusAccumulator.from_dict(g) for g in state.get("groups", ())]
        with self._lock:
            for group in incoming:
                existing = self._groups.get(group.group)
                if existing is None:
                    self._groups[group.group] = group
                else:
                    existing.check_same_config(group)
                    existing.pairs.extend(group.pairs)

    def finalize(self) -> list[Score]:
        """One score per group, by group name; empty groups come back unmeasured."""
        with self._lock:
            groups = [self._groups[name] for name in sorted(self._groups)]
        return [g.score() for g in groups]

    def clear(self) -> None:
        with self._lock:
            self._groups.clear()


_registry = CorpusRegistry()


def corpus_registry() -> CorpusRegistry:
    """The process-wide registry that ``collect_corpus_*`` fill."""
    return _registry


def _collect(
    metric: str,
    hypothesis: str,
    references: str | Sequence[str],
    *,
    group: str,
    threshold: float | None,
    options: Mapping[str, Any],
    registry: CorpusRegistry | None,
) -> None:
    if not isinstance(group, str) or not group:
        raise ValueError("group must be a non-empty str naming the corpus, e.g. group='wmt-en-de'")
    hypothesis = as_text(hypothesis, "hypothesis")
    refs = as_references(references)
    opts = translation.normalize_options(metric, options)
    threshold = check_number(threshold, "threshold" if metric != "ter" else "max_score", low=0.0)
    case = current_case()
    pair = CorpusPair(hypothesis, refs, case.nodeid if case is not None else None)
    (registry if registry is not None else _registry).add(group, metric, opts, threshold, pair)


def collect_corpus_bleu(
    hypothesis: str,
    references: str | Sequence[str],
    *,
    group: str,
    min_score: float | None = None,
    registry: CorpusRegistry | None = None,
    **options: Any,
) -> None:
    """Add this case's pair to corpus-BLEU group ``group``, gated at ``min_score`` (0-100) at the end.

    Options are sacrebleu's BLEU options (``lowercase``, ``tokenize``,
    ``smooth_method``, ...); every case of a group must use the same ones.
    """
    _collect("bleu", hypothesis, references, group=group, threshold=min_score, options=options, registry=registry)


def collect_corpus_chrf(
    hypothesis: str,
    references: str | Sequence[str],
    *,
    group: str,
    min_score: float | None = None,
    registry: CorpusRegistry | None = None,
    **options: Any,
) -> None:
    """Add this case's pair to corpus-chrF group ``group``, gated at ``min_score`` (0-100) at the end."""
    _collect("chrf", hypothesis, references, group=group, threshold=min_score, options=options, registry=registry)


def collect_corpus_ter(
    hypothesis: str,
    references: str | Sequence[str],
    *,
    group: str,
    max_score: float | None = None,
    registry: CorpusRegistry | None = None,
    **options: Any,
) -> None:
    """Add this case's pair to corpus-TER group ``group``, gated at ``max_score`` (lower is better)."""
    _collect("ter", hypothesis, references, group=group, threshold=max_score, options=options, registry=registry)


def export_corpus_state() -> dict[str, Any]:
    """The process-wide registry as plain dicts (for ``config.workeroutput``)."""
    return _registry.to_dict()


def merge_corpus_state(state: Mapping[str, Any]) -> None:
    """Merge a worker's :func:`export_corpus_state` into this process's registry."""
    _registry.merge(state)


def finalize_corpus_groups(*, clear: bool = True) -> list[Score]:
    """Score every collected group once; by default empty the registry afterwards."""
    scores = _registry.finalize()
    if clear:
        _registry.clear()
    return scores
