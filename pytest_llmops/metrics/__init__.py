"""Metrics: pure scoring code, no pytest. Every function returns an immutable ``Score``.

Importing this package is cheap: names are loaded from their modules on first
access, and each metric imports its library (rouge-score, sacrebleu, nltk,
bert-score, torch, ...) only when it first runs.

==================  ====================================================
private module      what
==================  ====================================================
``_rouge``          ROUGE-1/2/L/Lsum (rouge-score)
``_translation``    BLEU, chrF, TER, sentence and corpus (sacrebleu)
``_corpus``         corpus scores over the cases of a test group
``_meteor``         METEOR (nltk, offline WordNet 3.0)
``_bertscore``      BERTScore (bert-score, offline MiniLM)
``_similarity``     embedding cosine similarity (MiniLM by default)
``_strings``        exact, contains, regex, edit distance (rapidfuzz)
``_structured``     JSON, JSON Schema (jsonschema), pydantic
``_reward``         reward-model scores and pairwise comparison (a reward server)
==================  ====================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

_EXPORTS = {
    "rouge": "_rouge",
    "rouge_scores": "_rouge",
    "bleu": "_translation",
    "chrf": "_translation",
    "ter": "_translation",
    "sentence_score": "_translation",
    "corpus_score": "_translation",
    "CorpusAccumulator": "_corpus",
    "CorpusRegistry": "_corpus",
    "CorpusPair": "_corpus",
    "collect_corpus_bleu": "_corpus",
    "collect_corpus_chrf": "_corpus",
    "collect_corpus_ter": "_corpus",
    "corpus_registry": "_corpus",
    "export_corpus_state": "_corpus",
    "merge_corpus_state": "_corpus",
    "finalize_corpus_groups": "_corpus",
    "meteor": "_meteor",
    "bertscore": "_bertscore",
    "bertscore_many": "_bertscore",
    "bertscore_batch_sizes": "_bertscore",
    "semantic_similarity": "_similarity",
    "semantic_similarity_many": "_similarity",
    "prefetch_embeddings": "_similarity",
    "embedding_batch_sizes": "_similarity",
    "exact_match": "_strings",
    "contains": "_strings",
    "regex_match": "_strings",
    "edit_distance": "_strings",
    "json_valid": "_structured",
    "json_schema_valid": "_structured",
    "pydantic_valid": "_structured",
    "validate_json": "_structured",
    "validate_json_schema": "_structured",
    "validate_pydantic": "_structured",
    "MissingDependencyError": "_deps",
    "reward_score": "_reward",
    "reward_compare": "_reward",
}

__all__ = [
    "CorpusAccumulator",
    "CorpusPair",
    "CorpusRegistry",
    "MissingDependencyError",
    "bertscore",
    "bertscore_batch_sizes",
    "bertscore_many",
    "bleu",
    "chrf",
    "collect_corpus_bleu",
    "collect_corpus_chrf",
    "collect_corpus_ter",
    "contains",
    "corpus_registry",
    "corpus_score",
    "edit_distance",
    "embedding_batch_sizes",
    "exact_match",
    "export_corpus_state",
    "finalize_corpus_groups",
    "json_schema_valid",
    "json_valid",
    "merge_corpus_state",
    "meteor",
    "prefetch_embeddings",
    "pydantic_valid",
    "regex_match",
    "reward_compare",
    "reward_score",
    "rouge",
    "rouge_scores",
    "semantic_similarity",
    "semantic_similarity_many",
    "sentence_score",
    "ter",
    "validate_json",
    "validate_json_schema",
    "validate_pydantic",
]

if TYPE_CHECKING:
    from pytest_llmops.metrics._bertscore import (
        bertscore,
        bertscore_batch_sizes,
        bertscore_many,
    )
    from pytest_llmops.metrics._corpus import (
        CorpusAccumulator,
        CorpusPair,
        CorpusRegistry,
        collect_corpus_bleu,
        collect_corpus_chrf,
        collect_corpus_ter,
        corpus_registry,
        export_corpus_state,
        finalize_corpus_groups,
        merge_corpus_state,
    )
    from pytest_llmops.metrics._deps import MissingDependencyError
    from pytest_llmops.metrics._meteor import meteor
    from pytest_llmops.metrics._reward import reward_compare, reward_score
    from pytest_llmops.metrics._rouge import rouge, rouge_scores
    from pytest_llmops.metrics._similarity import (
        embedding_batch_sizes,
        prefetch_embeddings,
        semantic_similarity,
        semantic_similarity_many,
    )
    from pytest_llmops.metrics._strings import (
        contains,
        edit_distance,
        exact_match,
        regex_match,
    )
    from pytest_llmops.metrics._structured import (
        json_schema_valid,
        json_valid,
        pydantic_valid,
        validate_json,
        validate_json_schema,
        validate_pydantic,
    )
    from pytest_llmops.metrics._translation import (
        bleu,
        chrf,
        corpus_score,
        sentence_score,
        ter,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
