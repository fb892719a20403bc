"""pytest-llmops: LLM evaluations as ordinary pytest tests.

The public names below are loaded on first access, so ``import pytest_llmops``
(which pytest does in every run, through the plugin) costs almost nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Score": "pytest_llmops.verdict",
    "Verdict": "pytest_llmops.verdict",
    "UnmeasuredError": "pytest_llmops.verdict",
    "unmeasured": "pytest_llmops.verdict",
    "require": "pytest_llmops.case",
    "record_score": "pytest_llmops.case",
    "current_case": "pytest_llmops.case",
    "CaseRecord": "pytest_llmops.case",
    "Call": "pytest_llmops.models.call",
    "ProviderError": "pytest_llmops.models.backend",
    "LLMClient": "pytest_llmops.models.client",
    "Completion": "pytest_llmops.models.client",
    "ModelConfig": "pytest_llmops.models.client",
    "ModelRuntime": "pytest_llmops.models.client",
    "RetryPolicy": "pytest_llmops.models.retry",
    "CallCache": "pytest_llmops.models.cache",
    "RecordMode": "pytest_llmops.models.cache",
    "CacheError": "pytest_llmops.models.cache",
    "CacheMissError": "pytest_llmops.models.cache",
    "PromptLibrary": "pytest_llmops.prompts",
    "PromptTemplate": "pytest_llmops.prompts",
    "PromptError": "pytest_llmops.prompts",
    "load_cases": "pytest_llmops.cases",
    "EvalCase": "pytest_llmops.cases",
    "case_params": "pytest_llmops.cases",
    "detect_hallucination": "pytest_llmops.hallucination.detector",
    "Retriever": "pytest_llmops.retrieval.retriever",
    "RetrievedChunk": "pytest_llmops.retrieval.retriever",
    "RetrievalConfig": "pytest_llmops.retrieval.config",
    "Chunking": "pytest_llmops.retrieval.corpus",
    "Document": "pytest_llmops.retrieval.corpus",
    "open_store": "pytest_llmops.retrieval.stores",
    "VectorStore": "pytest_llmops.retrieval.stores",
    "require_calibrated": "pytest_llmops.judges.calibration",
    "load_judge_template": "pytest_llmops.judges.templates",
    "traced": "pytest_llmops.tracing.spans",
    "assert_tool_called": "pytest_llmops.tracing.assertions",
    "assert_trajectory": "pytest_llmops.tracing.assertions",
    "assert_steps": "pytest_llmops.tracing.assertions",
}

__all__ = sorted([*_EXPORTS, "__version__"])


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from pytest_llmops.case import CaseRecord, current_case, record_score, require
    from pytest_llmops.cases import EvalCase, load_cases
    from pytest_llmops.models.backend import ProviderError
    from pytest_llmops.models.cache import (
        CacheError,
        CacheMissError,
        CallCache,
        RecordMode,
    )
    from pytest_llmops.models.call import Call
    from pytest_llmops.models.client import (
        Completion,
        LLMClient,
        ModelConfig,
        ModelRuntime,
    )
    from pytest_llmops.models.retry import RetryPolicy
    from pytest_llmops.prompts import PromptError, PromptLibrary, PromptTemplate
    from pytest_llmops.verdict import Score, UnmeasuredError, Verdict, unmeasured
