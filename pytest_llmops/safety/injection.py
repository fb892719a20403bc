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

Model scores are calibrated probabilities rescaled so that each model's
shipped threshold lands on 0.5 (monotone, piecewise linear): a text is flagged
when its score is at least 0.5, whichever evidence produced it.

numpy is needed for the models (imported when they first load).
"""

from __future__ import annotations

from typing import Literal

from pytest_llmops.safety.findings import Detection
from pytest_llmops.safety.rules import match_rules
from pytest_llmops.safety.segment import segments

Source = Literal["user", "document"]
SOURCES = ("user", "document")
FLAG_AT = 0.5


def rescale(probability: float, threshold: float) -> float:
    """Map a calibrated probability so that ``threshold`` becomes 0.5 (the training script does the same)."""
    if probability < threshold:
        return 0.5 * probability / threshold
    return 0.5 + 0.5 * (probability - threshold) / (1.0 - threshold)


def detect_injection(text: str, *, source: Source = "user", threshold: float = FLAG_AT) -> Detection:
    """How much ``text`` looks like a prompt injection.

    ``source="user"`` for what a user typed; ``"document"`` for retrieved or
    tool-provided content (RAG chunks, web pages, e-mails, tool results),
    where any instruction to the assistant is suspect. ``threshold`` is on
    the rescaled score (0.5 = the shipped operating point).
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
    for name in names:
        model = load_model(name)
        # The indirect model judges single lines and sentences, so documents are always cut.
        probability, (start, end) = model.score_segments(text, always=name == "indirect")
        candidates.append((rescale(probability, model.threshold), start, end, f"model:{name}"))
        signatures.append(model.signature)
    hits = match_rules(text, document=source == "document")
    spans = segments(text) if hits else []
    for hit in hits:
        # Point at the whole line or sentence the rule matched in, not just the matched words.
        start, end = next(((a, b) for a, b in spans if a <= hit.start < b), (hit.start, hit.end))
        candidates.append((hit.rule.score, start, max(end, hit.end), f"rule:{hit.rule.name}"))
    score, start, end, evidence = max(candidates, key=lambda item: item[0])
    signature = ";".join(signatures) + f"|rules:injection.json|source:{source}"
    return Detection("injection", round(score, 6), threshold, start, end, evidence, signature)
