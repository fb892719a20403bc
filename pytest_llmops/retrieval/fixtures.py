"""The ``retriever`` and ``retrieval_config`` fixtures.

A suite points the retriever at its corpus by overriding ``retrieval_config``
in its ``conftest.py`` (see :class:`~pytest_llmops.retrieval.config.RetrievalConfig`);
the store kind comes from the config, unless ``--llmops-retrieval-store`` is
given on the command line (command line > suite config > ini > default).
Each distinct configuration is ingested once per run (re-ingestion of an
on-disk store embeds only what changed) and shared by the tests that use it.

Registered by the plugin at start-up: standard library and pytest only here;
numpy, the model and the stores load when a test first asks for a retriever.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmops.retrieval.config import RetrievalConfig
from pytest_llmops.retrieval.options import RetrievalOptions, resolve_options

_retrievers_key = pytest.StashKey[dict]()
_ON_DISK = ("faiss", "faiss-hnsw", "chroma")


def pytest_configure(config: pytest.Config) -> None:
    # Check the retrieval options at start-up, so a bad value stops the run before any test.
    resolve_options(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    for retriever in config.stash.get(_retrievers_key, {}).values():
        retriever.close()
        retriever.embedder.cache.close()


def _store_kind(config: pytest.Config, suite: RetrievalConfig, options: RetrievalOptions) -> Any:
    if options.sources.get("retrieval_store") == "command line" or suite.store is None:
        return options.retrieval_store
    return suite.store


def _default_path(options: RetrievalOptions, corpus: Path, kind: str, suite: RetrievalConfig, embedder: Any) -> Path:
    """One folder per corpus, store kind, embedder and chunking (and xdist worker: stores are single-writer)."""
    identity = repr((str(corpus.resolve()), kind, str(embedder), suite.chunking))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = f"{corpus.stem or 'corpus'}-{kind}-{digest}" + (f"-{worker}" if worker else "")
    return options.retrieval_path / name


def build_retriever(config: pytest.Config, suite: RetrievalConfig) -> Any:
    """The ingested retriever for ``suite`` (made and ingested on first use, then shared)."""
    from pytest_llmops.retrieval.embedder import EmbeddingCache, resolve_embedder
    from pytest_llmops.retrieval.errors import CorpusError
    from pytest_llmops.retrieval.retriever import Retriever
    from pytest_llmops.retrieval.stores import open_store
    from pytest_llmops.session import get_state

    options = resolve_options(config)
    corpus = suite.corpus if suite.corpus is not None else options.retrieval_corpus
    if corpus is None:
        raise CorpusError(
            "the retriever fixture has no corpus: override the retrieval_config fixture in your suite's "
            "conftest.py (return RetrievalConfig(corpus=Path(__file__).with_name('corpus'))), "
            "or set llmops_retrieval_corpus"
        )
    corpus = Path(corpus)
    if not corpus.is_absolute():
        corpus = Path(config.rootpath) / corpus
    kind = _store_kind(config, suite, options)
    embedder_spec = suite.embedder if suite.embedder is not None else options.embedder
    key = repr((str(corpus), kind if isinstance(kind, str) else id(kind), suite.path, str(embedder_spec),
                suite.chunking, suite.k))
    retrievers = config.stash.setdefault(_retrievers_key, {})
    if key in retrievers:
        return retrievers[key]
    path = suite.path
    if path is None and isinstance(kind, str) and kind.lower() not in ("numpy",):
        path = _default_path(options, corpus, kind.lower(), suite, embedder_spec)
    store = open_store(kind, path)
    runtime = get_state(config).runtime()
    uses_client = isinstance(embedder_spec, str) and embedder_spec.strip().lower() != "minilm"
    embedder = resolve_embedder(embedder_spec, runtime=runtime if uses_client else None,
                                api_base=options.embedder_api_base)
    cache = EmbeddingCache(options.retrieval_path / "embeddings.sqlite")
    retriever = Retriever(store, embedder, k=suite.k, cache=cache, runner=runtime.run)
    retriever.last_ingest = retriever.ingest_sync(corpus, chunking=suite.chunking)  # type: ignore[attr-defined]
    retrievers[key] = retriever
    return retriever


@pytest.fixture
def retrieval_config() -> RetrievalConfig:
    """The retriever's configuration; override it in a suite's conftest.py to set the corpus and chunking."""
    return RetrievalConfig()


@pytest.fixture
def retriever(request: pytest.FixtureRequest, retrieval_config: RetrievalConfig) -> Any:
    """A :class:`~pytest_llmops.retrieval.retriever.Retriever` over the suite's corpus, ingested once per run.

    ``await retriever.search(query, k)`` returns chunks with ``id``, ``text``,
    ``score`` (cosine similarity) and ``rank``; ``retriever.last_ingest`` says
    what the ingestion added, updated, removed and embedded.
    """
    from pytest_llmops.retrieval.errors import RetrievalError

    if not isinstance(retrieval_config, RetrievalConfig):
        pytest.fail(f"the retrieval_config fixture must return a RetrievalConfig, got {type(retrieval_config).__name__}",
                    pytrace=False)
    try:
        return build_retriever(request.config, retrieval_config)
    except RetrievalError as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)
