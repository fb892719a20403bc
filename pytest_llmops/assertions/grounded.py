"""``assert_grounded``: fail when an answer says things its context does not support, offline.

Uses the offline hallucination detector (``pytest_llmops.hallucination``):
no LLM judge, surface evidence only (words, word pairs, numbers, names,
quotes, negation); MiniLM only when asked (``embeddings=True``) or when the
model weighs it. Answers outside where the detector was validated
(abstractive rewordings and summaries, very long answers, text that is not
English) end unmeasured with a reason naming ``assert_faithful`` with a judge
(``pytest_llmops.hallucination.competence``). The recorded score is the
answer's hallucination probability (lower is better), signed with the
detector's version, weights hash and features, so runs with another model
are not compared with this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_llmops.case import require
from pytest_llmops.verdict import Score

__all__ = ["assert_grounded", "grounded_score"]

NAME = "grounded"


def grounded_score(
    answer: str,
    context: str | Sequence[str],
    *,
    max_score: float | None = None,
    embeddings: bool | None = None,
    model_dir: str | Path | None = None,
    competence: bool = True,
) -> Score:
    """The ``grounded`` score of ``answer`` against ``context``, without recording it.

    Unmeasured (never a pass) when the answer or the context is empty, and
    when the detector declines the answer (``competence``; see ``assert_grounded``).
    """
    from pytest_llmops.hallucination.detector import detect_hallucination
    from pytest_llmops.hallucination.model import load_model

    if max_score is not None and not 0.0 <= max_score <= 1.0:
        raise ValueError(f"assert_grounded(max_score={max_score}): max_score is a probability between 0 and 1")
    model = load_model(str(model_dir) if model_dir is not None else None)
    try:
        report = detect_hallucination(
            answer, context, threshold=max_score, embeddings=embeddings, model_dir=model_dir, competence=competence
        )
    except ValueError as error:  # empty answer or context: no evidence either way
        return Score.unmeasured(NAME, str(error), signature=model.signature)
    flagged = report.flagged
    if flagged:
        reason = f"{len(flagged)} of {len(report.sentences)} sentence(s) not supported by the context:\n" + "\n".join(
            f"    {s.describe()}" for s in flagged
        )
    else:
        reason = f"all {len(report.sentences)} sentence(s) supported; worst: {report.worst.describe()}"
    details = {
        "sentences": [
            {
                "text": s.text,
                "probability": round(s.probability, 4),
                "unsupported": list(s.unsupported),
                "unsupported_words": list(s.unsupported_words),
                "closest_context": s.closest_context,
                "similarity": None if s.similarity is None else round(s.similarity, 4),
            }
            for s in report.sentences
        ],
        "kind": report.kind.as_dict(),
    }
    if report.declined is not None:
        # The probability stays in the details as evidence, not as a verdict.
        details["probability"] = round(report.probability, 4)
        return Score.unmeasured(NAME, report.declined, signature=report.signature, details=details)
    return Score.measured(
        NAME,
        report.probability,
        threshold=report.threshold,
        higher_is_better=False,
        reason=reason,
        signature=report.signature,
        details=details,
    )


def assert_grounded(
    answer: str,
    context: str | Sequence[str],
    *,
    max_score: float | None = None,
    embeddings: bool | None = None,
    model_dir: str | Path | None = None,
    competence: bool = True,
) -> Score:
    """Fail if the offline detector finds ``answer`` unsupported by ``context``.

    ``context`` is a text or a list of retrieved chunks. The score is the
    answer's hallucination probability (its worst sentence's); the check
    passes when it is at most ``max_score`` (default: the shipped model's
    threshold, chosen to flag at most one grounded answer in ten that it
    judges, on each held-out set). The failure message lists the unsupported
    sentences and the numbers, names and quotes in them that the context
    lacks. An empty answer or context ends the test unmeasured, and so does
    an answer outside where the detector was validated (``competence=True``,
    the default): one that rewords its context (too many word pairs the
    context lacks; a short answer that adds a number or name the context
    lacks is still judged), one longer than any validated, or text that is
    not English. The reason names the measure and ``assert_faithful`` with a
    judge, which can check those. ``competence=False`` scores them anyway
    (at the model card's held-out false-alarm rates for abstractive text).
    ``embeddings=True`` also computes each sentence's MiniLM similarity to
    its closest context sentence (the shipped model gives it weight 0, so
    the score is the same and the default skips it: no torch, no model to
    load).
    """
    score = grounded_score(
        answer, context, max_score=max_score, embeddings=embeddings, model_dir=model_dir, competence=competence
    )
    shown = context if isinstance(context, str) else "\n".join(context) if isinstance(context, Sequence) else context
    return require(score, answer=answer, context=shown)
