"""Offline hallucination detection: is an answer supported by its context? No LLM, no judge.

``detect_hallucination(answer, context)`` splits the answer into sentences
and, for each, measures how well the context supports it: the share of its
words and word pairs that the context contains, and the numbers, dates,
names and quoted spans it adds (and, if the model weighs it or you ask with
``embeddings=True``, its MiniLM similarity to the closest context sentence).
A small logistic model trained on public labelled data
(``scripts/train_hallucination.py``; figures in ``models/offline.md``) turns
these into a calibrated probability per sentence; the answer's probability
is its worst sentence's. ``assert_grounded`` (``pytest_llmops.assertions``)
gates a test on it. It answers only inside the region where it was
validated (``competence``: English, extractive answers of validated length;
short answers that add a number or name); elsewhere the report is declined
and the check unmeasured, naming ``assert_faithful`` with a judge.

It measures surface support, not entailment; see the model card for what it
misses. The shipped model gives the MiniLM feature weight 0, so by default
it needs only nltk (sentence splitting, stemming; the ``metrics`` extra) and
numpy; ``embeddings=True`` also needs the ``embeddings`` extra (torch,
transformers, the packaged MiniLM). All are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

_EXPORTS = {
    "detect_hallucination": "pytest_llmops.hallucination.detector",
    "HallucinationReport": "pytest_llmops.hallucination.detector",
    "SentenceEvidence": "pytest_llmops.hallucination.detector",
    "load_model": "pytest_llmops.hallucination.model",
    "HallucinationModel": "pytest_llmops.hallucination.model",
    "FEATURES": "pytest_llmops.hallucination.features",
    "Competence": "pytest_llmops.hallucination.competence",
    "TextKind": "pytest_llmops.hallucination.competence",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmops.hallucination.competence import Competence, TextKind
    from pytest_llmops.hallucination.detector import (
        HallucinationReport,
        SentenceEvidence,
        detect_hallucination,
    )
    from pytest_llmops.hallucination.features import FEATURES
    from pytest_llmops.hallucination.model import HallucinationModel, load_model
