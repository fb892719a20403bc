"""``detect_hallucination``: how likely an answer says what its context does not, and where.

Example::

    bridge = "The Kelvane Bridge crosses the river Ost. It is 340 metres long."
    report = detect_hallucination("The bridge is 410 metres long.", bridge)
    report.probability            # ~0.9: hallucinated
    report.worst.unsupported_numbers   # ['410']
    report.flagged                # the sentences above the threshold

    report = detect_hallucination("Ships can pass under it in both directions.", bridge)
    report.declined               # "the short answer is abstractive (...): use assert_faithful(...) with a judge"
    report.hallucinated           # ValueError: the detector declined this answer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_llmops.hallucination.competence import TextKind, novel_pairs, text_kind
from pytest_llmops.hallucination.extract import Embed, extract
from pytest_llmops.hallucination.model import HallucinationModel, load_model


@dataclass(frozen=True)
class SentenceEvidence:
    """One answer sentence: its probability of being unsupported and why."""

    text: str
    probability: float
    closest_context: str
    #: MiniLM cosine to ``closest_context``; None on the lexical path (nothing embedded)
    similarity: float | None
    word_support: float
    unsupported_numbers: tuple[str, ...]
    unsupported_names: tuple[str, ...]
    unsupported_quotes: tuple[str, ...]
    unsupported_words: tuple[str, ...]
    features: dict[str, float]

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Numbers, dates, names and quotes of this sentence that the context lacks (the strongest evidence)."""
        quoted = tuple(f'"{q}"' for q in self.unsupported_quotes)
        return tuple(dict.fromkeys((*self.unsupported_numbers, *self.unsupported_names, *quoted)))

    def describe(self) -> str:
        """One line: the sentence, its probability and what in it is unsupported."""
        line = f"{self.probability:.2f} {self.text!r}"
        if self.unsupported:
            line += f" - not in the context: {', '.join(self.unsupported)}"
        elif self.unsupported_words:
            line += f" - words not in the context: {', '.join(self.unsupported_words[:8])}"
        elif self.similarity is None:
            line += f" - closest context sentence: {self.closest_context[:120]!r}"
        else:
            line += f" - closest context sentence (similarity {self.similarity:.2f}): {self.closest_context[:120]!r}"
        return line


@dataclass(frozen=True)
class HallucinationReport:
    """The detector's verdict on one answer: a probability, a threshold and per-sentence evidence."""

    probability: float
    threshold: float
    sentences: tuple[SentenceEvidence, ...]
    signature: str
    #: the answer's kind (length, novel word pairs, English) that the competence check read
    kind: TextKind
    #: why the detector does not judge this answer (outside where it was validated), else None
    declined: str | None = None

    @property
    def measured(self) -> bool:
        """Whether the detector judges this answer (``declined`` is None)."""
        return self.declined is None

    @property
    def hallucinated(self) -> bool:
        """Whether the answer's probability is above the threshold (at it passes, as ``assert_grounded`` does).

        Raises ``ValueError`` when the detector declined the answer: there is no
        verdict then, and reading one as "not hallucinated" would be a silent pass.
        """
        if self.declined is not None:
            raise ValueError(f"the detector declined this answer, so it has no verdict: {self.declined}")
        return self.probability > self.threshold

    @property
    def worst(self) -> SentenceEvidence:
        """The sentence with the highest probability (the answer's probability is its)."""
        return max(self.sentences, key=lambda s: s.probability)

    @property
    def flagged(self) -> tuple[SentenceEvidence, ...]:
        """The sentences above the threshold, most suspicious first."""
        return tuple(sorted((s for s in self.sentences if s.probability > self.threshold), key=lambda s: -s.probability))


def detect_hallucination(
    answer: str,
    context: str | Sequence[str],
    *,
    threshold: float | None = None,
    embeddings: bool | None = None,
    embed: Embed | None = None,
    model_dir: str | Path | None = None,
    competence: bool = True,
) -> HallucinationReport:
    """Score how likely ``answer`` states things that ``context`` does not support; no LLM involved.

    ``context`` is a text or a list of chunks (retrieved passages). Each
    answer sentence is compared with the context (word and word-pair
    support, unsupported numbers, dates, names and quotes, a flipped
    negation) and given a calibrated probability; the answer's probability
    is its worst sentence's. ``threshold`` defaults to the shipped model's
    (chosen to flag few grounded answers). ``model_dir`` loads another
    trained combiner.

    ``embeddings``: whether to compute the MiniLM similarity feature. By
    default (None) only when the model weighs it; the shipped model does not,
    so the default path needs neither torch nor the MiniLM model, and the
    evidence sentence is chosen by shared words. ``True`` embeds anyway (the
    score is the same; ``similarity`` is filled and the evidence sentence is
    MiniLM's closest). ``embed`` replaces the MiniLM embedder (texts -> unit
    rows) and implies ``embeddings=True``.

    ``competence``: whether to decline answers outside the region where the
    model was validated (``HallucinationModel.competence``: abstractive
    answers, answers longer than any validated, text that is not English).
    A declined report keeps its probability and evidence but sets
    ``declined`` to the reason, and ``hallucinated`` raises. ``False``
    scores every answer (the held-out figures in the model card say how
    badly that goes on abstractive text).

    Raises ``ValueError`` when the answer or the context is empty: with no
    evidence there is nothing to measure; and when ``embeddings=False`` is
    asked of a model that weighs the similarity feature.
    """
    model: HallucinationModel = load_model(str(model_dir) if model_dir is not None else None)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold}")
    if embeddings is None:
        embeddings = embed is not None or model.uses("sim_best")
    elif not embeddings and model.uses("sim_best"):
        raise ValueError(
            f"embeddings=False, but the hallucination model {model.name!r} weighs the MiniLM similarity (sim_best): "
            "leave embeddings unset or True"
        )
    features, index = extract(answer, context, embed=embed, embeddings=embeddings)
    probabilities = model.probabilities([f.vector() for f in features])
    sentences = tuple(
        SentenceEvidence(
            text=f.text,
            probability=float(p),
            closest_context=index.sentences[f.best_context],
            similarity=f.values.get("sim_best"),
            word_support=f.values["recall_context"],
            unsupported_numbers=tuple(f.unsupported_numbers),
            unsupported_names=tuple(f.unsupported_names),
            unsupported_quotes=tuple(f.unsupported_quotes),
            unsupported_words=tuple(f.unsupported_words),
            features=dict(f.values),
        )
        for f, p in zip(features, probabilities)
    )
    threshold = model.threshold if threshold is None else float(threshold)
    kind = text_kind([s.text for s in sentences], index)
    declined = None
    if competence:
        region = model.competence
        declined = region.decline(kind, unsupported_facts=any(s.unsupported_numbers or s.unsupported_names for s in sentences))
        flagged = [s for s in sentences if s.probability > threshold]
        if declined is None and flagged:  # may one of the flagged sentences fail the answer by itself?
            novel = [novel_pairs([s.text], index) for s in flagged]
            judged = [
                region.judges_sentence(n, unsupported_facts=bool(s.unsupported_numbers or s.unsupported_names),
                                       answer_words=kind.words)
                for s, n in zip(flagged, novel)
            ]
            if not any(judged):
                declined = region.decline_failure(novel)
    return HallucinationReport(
        probability=max(s.probability for s in sentences),
        threshold=threshold,
        sentences=sentences,
        signature=model.signature,
        kind=kind,
        declined=declined,
    )
