"""Offline toxicity detection with the shipped n-gram model (``models/toxicity.*``).

The score is a calibrated probability that the text is toxic, abusive or
hateful, or asks for help to hurt people. A text longer than the model's
segment length is scored per line/sentence and gets its worst segment's
score, so one abusive sentence in a long answer is not averaged away.

numpy is needed (imported when the model first loads).
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llmops.safety.competence import outside
from pytest_llmops.safety.findings import Detection

MODEL = "toxicity"


def detect_toxicity(text: str, *, threshold: float | None = None, embeddings: bool = False) -> Detection:
    """Score ``text``; ``threshold`` defaults to the model's shipped operating point.

    With ``embeddings=True`` the score is the mean of the n-gram model's and the
    MiniLM head's scores, each rescaled so that its own threshold is 0.5 (and the
    default threshold is 0.5): better on implicit hate, much slower, and it needs
    the MiniLM embedder installed (see ``models/toxicity_minilm.md``).

    The models are validated on English only (``competence``): text in another
    language or script is not scored; the detection is unmeasured, with the
    language found and the judge-backed alternative in ``Detection.unmeasured``.
    """
    from pytest_llmops.safety.model import load_model

    if not isinstance(text, str):
        raise TypeError(f"detect_toxicity() needs a str, got {type(text).__name__}")
    model = load_model(MODEL)
    if text.strip():
        beyond = outside(text, MODEL)
        if beyond is not None:
            tag = beyond.language.code or f"script-{beyond.language.script}"
            default = 0.5 if embeddings else model.threshold
            return Detection(
                MODEL, None, _threshold(threshold, default), 0, len(text), f"language:{tag}",
                f"{model.signature}|competence:en", unmeasured=beyond.reason,
            )  # fmt: skip
    if embeddings and text.strip():
        return _with_embeddings(text, model, threshold)
    if not text.strip():
        return Detection(MODEL, 0.0, _threshold(threshold, model.threshold), 0, 0, "empty text", model.signature)
    score, (start, end) = model.score_segments(text)
    return Detection(
        MODEL, score, _threshold(threshold, model.threshold), start, end, f"model:{MODEL}", model.signature
    )


def _with_embeddings(text: str, model, threshold: float | None) -> Detection:
    from pytest_llmops.safety.embedding_head import load_head
    from pytest_llmops.safety.injection import rescale
    from pytest_llmops.safety.segment import segments

    head = load_head()
    spans = [(0, len(text))] if len(text) <= model.segment_chars else segments(text, max_chars=model.segment_chars)
    pieces = [text[a:b] for a, b in spans] or [text]
    ngram = model.probabilities(pieces)
    semantic = head.probabilities(pieces)
    # Each model's score rescaled so its own threshold is 0.5, averaged, and the average
    # rescaled so the ensemble's threshold (chosen like the models', in its card) is 0.5.
    ensemble = head.ensemble_threshold or 0.5
    scores = [
        rescale((rescale(float(p), model.threshold) + rescale(float(q), head.threshold)) / 2, ensemble)
        for p, q in zip(ngram, semantic, strict=True)
    ]
    best = max(range(len(scores)), key=scores.__getitem__)
    start, end = spans[best] if spans else (0, len(text))
    return Detection(
        f"{MODEL}+minilm",
        scores[best],
        _threshold(threshold, 0.5),
        start,
        end,
        "model:toxicity+toxicity_minilm",
        f"{model.signature};{head.signature}",
    )


def toxicity_scores(texts: Sequence[str]) -> list[float]:
    """Calibrated toxicity probabilities for many texts at once (each scored whole: fastest path).

    Raw model output for research and benchmarks: no competence check, so a
    non-English text gets a number the model was never validated on. Use
    ``detect_toxicity`` (or ``assert_not_toxic``) to be told when that happens.
    """
    from pytest_llmops.safety.model import load_model

    if isinstance(texts, str):
        raise TypeError("toxicity_scores() takes a list of texts; for one text use detect_toxicity(text)")
    return [float(p) for p in load_model(MODEL).probabilities(list(texts))] if texts else []


def default_threshold() -> float:
    """The shipped model's default threshold (see its model card)."""
    from pytest_llmops.safety.model import load_model

    return load_model(MODEL).threshold


def _threshold(given: float | None, default: float) -> float:
    if given is None:
        return default
    if not 0.0 <= given <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {given}")
    return float(given)
