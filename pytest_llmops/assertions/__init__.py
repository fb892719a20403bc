"""The public ``assert_*`` API.

Each helper computes an immutable ``Score``, records it on the running case
and turns its verdict into the test's outcome: a failing score raises
``AssertionError`` showing the score, the threshold, the reason and the inputs
that mattered; an unmeasured one ends the test unmeasured. Names load on first
use, so importing this package pulls in no metric library.
"""

from __future__ import annotations


from pytest_llmops._lazy import lazy_exports

_MODULES = {
    "pytest_llmops.assertions.text": (
        "assert_rouge", "assert_bleu", "assert_chrf", "assert_ter", "assert_meteor", "assert_bertscore",
        "assert_semantic_similarity", "assert_exact", "assert_contains", "assert_not_contains", "assert_regex",
        "assert_edit_distance", "assert_json", "assert_json_schema", "assert_pydantic",
        "collect_corpus_bleu", "collect_corpus_chrf", "collect_corpus_ter",
    ),
    "pytest_llmops.assertions.safety": (
        "assert_no_pii", "assert_no_leak", "assert_not_toxic", "assert_no_injection", "assert_injection_not_followed",
        "assert_not_toxic_judged", "assert_not_biased_judged", "assert_no_pii_judged",
        "assert_injection_not_followed_judged",
    ),
    "pytest_llmops.assertions.retrieval": ("assert_retrieval", "assert_mean_retrieval"),
    "pytest_llmops.assertions.drift": ("assert_no_drift", "assert_centroid_within", "assert_log_no_drift"),
    "pytest_llmops.assertions.grounded": ("assert_grounded",),
    "pytest_llmops.assertions.reward": ("assert_reward", "assert_reward_preferred"),
    "pytest_llmops.assertions.judged": (
        "assert_rubric", "assert_faithful", "assert_no_hallucination", "assert_answer_relevant",
        "assert_context_precision", "assert_context_recall", "assert_preferred", "assert_matches_judge_reference",
    ),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
