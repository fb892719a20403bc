"""The rag_qa suite's retriever: the Quillpad help centre in ./corpus, three sentences a chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmops.retrieval.config import RetrievalConfig
from pytest_llmops.retrieval.corpus import Chunking


@pytest.fixture
def retrieval_config() -> RetrievalConfig:
    # The store kind is left to the run (llmops_retrieval_store / --llmops-retrieval-store; numpy by default).
    return RetrievalConfig(
        corpus=Path(__file__).with_name("corpus"),
        chunking=Chunking("sentences", size=3, overlap=1),
        k=3,
    )
