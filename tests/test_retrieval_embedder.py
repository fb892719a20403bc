"""Embedders for retrieval: the offline MiniLM, any litellm model through the client, batching and caching."""

from __future__ import annotations

import asyncio

import pytest

from pytest_llmops.models.cache import CallCache, RecordMode
from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
from pytest_llmops.retrieval.embedder import (
    CachingEmbedder,
    ClientEmbedder,
    EmbeddingCache,
    MiniLMTextEmbedder,
    resolve_embedder,
)
from pytest_llmops.retrieval.errors import RetrievalError

np = pytest.importorskip("numpy")

TEXTS = ["the cat sat", "a dog barked", "the cat sat", "rain fell", "snow fell"]


def embedding_requests(server) -> int:
    return server.requests_by_path.get("/v1/embeddings", 0)


def test_minilm_gives_unit_rows_of_384_in_input_order():
    embedder = CachingEmbedder(MiniLMTextEmbedder(batch_size=2))

    vectors = asyncio.run(embedder.embed(["a kettle boils water", "tea needs hot water", "a kettle boils water"]))

    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert embedder.embedded == 2  # the repeated text is embedded once


def test_a_litellm_model_embeds_through_the_client_in_batches(make_client, server):
    embedder = ClientEmbedder(make_client(model="openai/test-embedder", role="embedder"), batch_size=2)
    cached = CachingEmbedder(embedder)

    vectors = asyncio.run(cached.embed(TEXTS))

    assert vectors.shape == (5, 16)  # the test server's embedding length
    assert embedding_requests(server) == 2  # four distinct texts, two a request
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert embedder.signature == f"litellm:openai/test-embedder@{server.url}"


def test_cached_texts_never_reach_the_model_again(make_client, server, tmp_path):
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    first = CachingEmbedder(ClientEmbedder(make_client(model="openai/test-embedder", role="embedder")), cache)
    before = asyncio.run(first.embed(TEXTS[:2]))
    cache.close()

    # A later run: a new client, a new cache object on the same file.
    again = CachingEmbedder(ClientEmbedder(make_client(model="openai/test-embedder", role="embedder")),
                            EmbeddingCache(tmp_path / "embeddings.sqlite"))
    after = asyncio.run(again.embed(TEXTS))

    assert embedding_requests(server) == 2  # one for the first two texts, one for the two new ones
    assert again.embedded == 2
    assert np.array_equal(before, after[:2])


def test_the_clients_own_call_cache_replays_embedding_calls(server, tmp_path, api_key):
    def embedder() -> ClientEmbedder:
        runtime = ModelRuntime(cache=CallCache(tmp_path / "calls.sqlite"), record_mode=RecordMode.NEW)
        config = ModelConfig(model="openai/test-embedder", role="embedder", api_base=server.url, api_key=api_key)
        return ClientEmbedder(LLMClient(config, runtime))

    asyncio.run(CachingEmbedder(embedder()).embed(TEXTS))
    asyncio.run(CachingEmbedder(embedder()).embed(TEXTS))

    assert embedding_requests(server) == 1


def test_embedders_with_different_signatures_do_not_share_cache_entries():
    cache = EmbeddingCache()

    class Ones:
        signature = "ones|dim:3"

        def embed(self, texts):
            return np.ones((len(texts), 3))

    class Twos(Ones):
        signature = "twos|dim:2"

        def embed(self, texts):
            return np.ones((len(texts), 2))

    assert asyncio.run(CachingEmbedder(Ones(), cache).embed(["x"])).shape == (1, 3)
    assert asyncio.run(CachingEmbedder(Twos(), cache).embed(["x"])).shape == (1, 2)


def test_an_embedder_returning_the_wrong_shape_is_an_error():
    class Short:
        signature = "short"

        def embed(self, texts):
            return np.ones((1, 4))

    with pytest.raises(RetrievalError, match=r"embedder 'short' returned shape \(1, 4\) for 2 texts"):
        asyncio.run(CachingEmbedder(Short()).embed(["a", "b"]))


def test_an_embedder_without_a_signature_is_refused():
    class Anonymous:
        def embed(self, texts):
            return np.ones((len(texts), 2))

    with pytest.raises(RetrievalError, match="must have a 'signature' string"):
        resolve_embedder(Anonymous())
    with pytest.raises(RetrievalError, match="has no 'signature' string"):
        CachingEmbedder(Anonymous())


def test_names_resolve_to_minilm_or_a_litellm_model():
    assert isinstance(resolve_embedder(None), MiniLMTextEmbedder)
    assert isinstance(resolve_embedder(" MiniLM "), MiniLMTextEmbedder)
    remote = resolve_embedder("openai/text-embedding-3-small", api_base="http://127.0.0.1:9/v1")
    assert isinstance(remote, ClientEmbedder)
    assert remote.signature == "litellm:openai/text-embedding-3-small@http://127.0.0.1:9/v1"


def test_a_single_string_is_refused():
    with pytest.raises(TypeError, match="wrap a single text in a list"):
        asyncio.run(CachingEmbedder(MiniLMTextEmbedder()).embed("one text"))
