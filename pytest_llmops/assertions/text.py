"""``assert_*`` helpers for reference-based text metrics and structured output.

Each helper computes a :class:`~pytest_llmops.verdict.Score` with the metric
functions of :mod:`pytest_llmops.metrics`, records it on the current case and
turns its verdict into the test's outcome through
:func:`pytest_llmops.case.require`: a failure raises ``AssertionError`` whose
message shows the score, the threshold, why, and the inputs that mattered;
an unmeasurable score (an empty reference, say) raises ``UnmeasuredError``.

Thresholds are keyword-only and use the metric's own scale: ROUGE, METEOR,
BERTScore and similarities 0-1, sacrebleu's BLEU/chrF/TER 0-100.

Corpus-level BLEU/chrF/TER (``collect_corpus_*``) do not gate the case: they
collect its pair, and the group is scored and gated once at the end of the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pytest_llmops.case import require
from pytest_llmops.metrics import _corpus, _strings, _structured, _translation
from pytest_llmops.verdict import Score, UnmeasuredError, hide_check_frames

# A failing check is shown from the test's line (see verdict.hide_check_frames).
__tracebackhide__ = hide_check_frames

__all__ = [
    "assert_bertscore",
    "assert_bleu",
    "assert_chrf",
    "assert_contains",
    "assert_edit_distance",
    "assert_exact",
    "assert_json",
    "assert_json_schema",
    "assert_meteor",
    "assert_not_contains",
    "assert_pydantic",
    "assert_regex",
    "assert_rouge",
    "assert_semantic_similarity",
    "assert_ter",
    "collect_corpus_bleu",
    "collect_corpus_chrf",
    "collect_corpus_ter",
]

collect_corpus_bleu = _corpus.collect_corpus_bleu
collect_corpus_chrf = _corpus.collect_corpus_chrf
collect_corpus_ter = _corpus.collect_corpus_ter


def _require_all(scores: Sequence[Score], **inputs: Any) -> Score:
    """Record every score, then raise for the first that did not pass; return the first score."""
    first_error: BaseException | None = None
    for score in scores:
        try:
            require(score, **inputs)
        except (AssertionError, UnmeasuredError) as error:
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return scores[0]


def _thresholds(helper: str, given: Mapping[str, float | None]) -> dict[str, float]:
    chosen = {key: value for key, value in given.items() if value is not None}
    if not chosen:
        names = ", ".join(f"{key}=..." for key in given)
        raise TypeError(f"{helper}() needs a threshold: pass at least one of {names}")
    return chosen


def assert_rouge(
    prediction: str,
    reference: str | Sequence[str],
    *,
    rouge: str = "rougeL",
    min_f: float | None = None,
    min_precision: float | None = None,
    min_recall: float | None = None,
    use_stemmer: bool = False,
    lsum_split: Literal["punkt", "newline"] = "punkt",
) -> Score:
    """ROUGE (rouge-score) of ``prediction`` against ``reference`` (or several: the best counts).

    ``rouge`` is "rouge1", "rouge2", "rougeL" or "rougeLsum". Give any of
    ``min_f``, ``min_precision``, ``min_recall`` (0-1); all given are checked
    and recorded, and the score of the first (F, then precision, then recall)
    is returned.
    """
    from pytest_llmops.metrics._inputs import check_unit_interval
    from pytest_llmops.metrics._rouge import rouge_measures

    limits = _thresholds("assert_rouge", {"min_f": min_f, "min_precision": min_precision, "min_recall": min_recall})
    measure_of = {"min_f": "fmeasure", "min_precision": "precision", "min_recall": "recall"}
    thresholds = {measure_of[key]: check_unit_interval(value, key) for key, value in limits.items()}
    scores = rouge_measures(
        prediction, reference, rouge_type=rouge, thresholds=thresholds, use_stemmer=use_stemmer, lsum_split=lsum_split
    )
    return _require_all(scores, prediction=prediction, reference=reference, signature=scores[0].signature)


def assert_bleu(hypothesis: str, references: str | Sequence[str], *, min_score: float, **options: Any) -> Score:
    """Sentence BLEU (sacrebleu, 0-100, effective order) of ``hypothesis`` is at least ``min_score``."""
    score = _translation.bleu(hypothesis, references, threshold=min_score, **options)
    return require(score, hypothesis=hypothesis, references=references, signature=score.signature)


def assert_chrf(hypothesis: str, references: str | Sequence[str], *, min_score: float, **options: Any) -> Score:
    """Sentence chrF (sacrebleu, 0-100) of ``hypothesis`` is at least ``min_score``; ``word_order=2`` for chrF++."""
    score = _translation.chrf(hypothesis, references, threshold=min_score, **options)
    return require(score, hypothesis=hypothesis, references=references, signature=score.signature)


def assert_ter(hypothesis: str, references: str | Sequence[str], *, max_score: float, **options: Any) -> Score:
    """Sentence TER (sacrebleu, edits per 100 reference words) of ``hypothesis`` is at most ``max_score``."""
    score = _translation.ter(hypothesis, references, threshold=max_score, **options)
    return require(score, hypothesis=hypothesis, references=references, signature=score.signature)


def assert_meteor(
    hypothesis: str,
    references: str | Sequence[str],
    *,
    min_score: float,
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
) -> Score:
    """METEOR (nltk, offline WordNet 3.0; 0-1) of ``hypothesis`` is at least ``min_score``."""
    from pytest_llmops.metrics._meteor import meteor

    score = meteor(hypothesis, references, alpha=alpha, beta=beta, gamma=gamma, threshold=min_score)
    return require(score, hypothesis=hypothesis, references=references)


def assert_bertscore(
    candidate: str,
    references: str | Sequence[str],
    *,
    min_f1: float | None = None,
    min_precision: float | None = None,
    min_recall: float | None = None,
    rescale: bool = False,
    num_layers: int = 6,
) -> Score:
    """BERTScore (bert-score with offline MiniLM) of ``candidate`` against its best reference.

    Scored once; each of ``min_f1``, ``min_precision``, ``min_recall`` given is
    checked and recorded, and the score of the first given is returned.
    ``rescale=True`` applies the project's MiniLM baseline (then unrelated
    text scores about 0).
    """
    from pytest_llmops.metrics._bertscore import bertscore

    limits = _thresholds(
        "assert_bertscore", {"min_f1": min_f1, "min_precision": min_precision, "min_recall": min_recall}
    )
    measure_of = {"min_f1": "f1", "min_precision": "precision", "min_recall": "recall"}
    # The first call computes (and caches) the pair; the others are cache hits.
    scores = [
        bertscore(
            candidate, references, measure=measure_of[key], rescale=rescale, num_layers=num_layers, threshold=value
        )
        for key, value in limits.items()
    ]
    return _require_all(scores, candidate=candidate, references=references)


def assert_semantic_similarity(
    output: str,
    references: str | Sequence[str],
    *,
    min_score: float,
    embedder: Any | None = None,
) -> Score:
    """Cosine similarity of the embeddings of ``output`` and its best reference is at least ``min_score``.

    The embedder defaults to the offline all-MiniLM-L6-v2; pass the project's
    embedding client (anything with ``embed_sync(texts)`` or ``embed(texts)``) to use another.
    """
    from pytest_llmops.metrics._similarity import semantic_similarity

    score = semantic_similarity(output, references, embedder=embedder, threshold=min_score)
    return require(score, output=output, references=references)


def assert_exact(
    output: str,
    expected: str,
    *,
    ignore_case: bool = False,
    collapse_whitespace: bool = False,
    strip: bool = True,
) -> Score:
    """``output`` equals ``expected`` (outer whitespace ignored unless ``strip=False``)."""
    score = _strings.exact_match(
        output, expected, ignore_case=ignore_case, collapse_whitespace=collapse_whitespace, strip=strip
    )
    return require(score, output=output, expected=expected)


def assert_contains(
    output: str,
    needles: str | Sequence[str],
    *,
    mode: Literal["all", "any"] = "all",
    ignore_case: bool = False,
) -> Score:
    """``output`` contains ``needles`` (all of them, or with ``mode="any"`` at least one)."""
    score = _strings.contains(output, needles, mode=mode, ignore_case=ignore_case)
    return require(score, output=output, needles=needles)


def assert_not_contains(output: str, needles: str | Sequence[str], *, ignore_case: bool = False) -> Score:
    """``output`` contains none of ``needles``."""
    score = _strings.contains(output, needles, ignore_case=ignore_case, negate=True)
    return require(score, output=output, needles=needles)


def assert_regex(
    output: str,
    pattern: str | re.Pattern[str],
    *,
    mode: Literal["search", "fullmatch", "match"] = "search",
    flags: int = 0,
) -> Score:
    """``pattern`` matches ``output`` (anywhere by default; ``mode="fullmatch"`` for the whole text)."""
    score = _strings.regex_match(output, pattern, mode=mode, flags=flags)
    return require(score, output=output, pattern=pattern if isinstance(pattern, str) else pattern.pattern)


def assert_edit_distance(
    output: str,
    expected: str,
    *,
    max_distance: int | None = None,
    max_normalized: float | None = None,
    ignore_case: bool = False,
    collapse_whitespace: bool = False,
) -> Score:
    """Levenshtein distance (rapidfuzz) of ``output`` to ``expected`` is small enough.

    ``max_distance`` bounds the number of edits; ``max_normalized`` bounds
    edits divided by the longer length (0-1). Give either or both.
    """
    limits = _thresholds("assert_edit_distance", {"max_distance": max_distance, "max_normalized": max_normalized})
    scores = []
    if "max_distance" in limits:
        scores.append(
            _strings.edit_distance(
                output,
                expected,
                normalized=False,
                ignore_case=ignore_case,
                collapse_whitespace=collapse_whitespace,
                threshold=limits["max_distance"],
            )
        )
    if "max_normalized" in limits:
        scores.append(
            _strings.edit_distance(
                output,
                expected,
                normalized=True,
                ignore_case=ignore_case,
                collapse_whitespace=collapse_whitespace,
                threshold=limits["max_normalized"],
            )
        )
    return _require_all(scores, output=output, expected=expected)


def assert_json(output: Any, *, allow_code_fence: bool = False) -> Any:
    """``output`` is valid JSON; returns the parsed value."""
    score, value = _structured.validate_json(output, allow_code_fence=allow_code_fence)
    require(score, output=output)
    return value


def assert_json_schema(
    output: Any,
    schema: Mapping[str, Any] | bool,
    *,
    allow_code_fence: bool = False,
    check_formats: bool = False,
) -> Any:
    """``output`` is JSON that satisfies ``schema`` (jsonschema); returns the parsed value.

    The failure message lists each error with its JSON path (``$.items[0].price``).
    """
    score, value = _structured.validate_json_schema(
        output, schema, allow_code_fence=allow_code_fence, check_formats=check_formats
    )
    require(score, output=output)
    return value


def assert_pydantic(output: Any, model: Any, *, strict: bool = False, allow_code_fence: bool = False) -> Any:
    """``output`` validates as ``model`` (a pydantic model or any type pydantic accepts); returns the instance."""
    score, value = _structured.validate_pydantic(output, model, strict=strict, allow_code_fence=allow_code_fence)
    require(score, output=output)
    return value
