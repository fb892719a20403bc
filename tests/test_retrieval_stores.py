"""One retriever, three real stores: numpy in memory, FAISS and Chroma on disk, with the offline MiniLM."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_llmops.assertions import assert_retrieval
from pytest_llmops.retrieval.corpus import Chunking, Document
from pytest_llmops.retrieval.embedder import EmbeddingCache, MiniLMTextEmbedder
from pytest_llmops.retrieval.errors import (
    CorpusError,
    DimensionMismatchError,
    RetrievalError,
    StoreError,
)
from pytest_llmops.retrieval.retriever import Retriever
from pytest_llmops.retrieval.stores import open_store

pytest.importorskip("faiss")
pytest.importorskip("chromadb")

DOCS = {
    "charging": "Plug the cable into the USB-C port. A full charge takes two hours. The light turns green when full.",
    "returns": "You may return the tablet within 45 days. Print the free label from your order page.",
    "warranty": "The warranty lasts two years. It does not cover a cracked screen after a drop.",
    "reset": "Hold the power button for fifteen seconds to restart a frozen tablet.",
    "wifi": "The tablet joins 2.4 GHz and 5 GHz networks. Hotel sign-in pages are not supported.",
    "pen": "The pen needs no battery. Its nibs last about six weeks. Spare nibs come in packs of nine.",
}
QUERIES = [
    ("How many days do I have to send it back?", ["returns#0"]),
    ("My screen froze, how do I restart?", ["reset#0"]),
    ("Does the stylus need charging?", ["pen#0"]),
    ("Is a broken display covered?", ["warranty#0"]),
]
CHUNKING = Chunking("sentences", size=2, overlap=1)
STORES = ["numpy", "faiss", "chroma"]


def documents(docs: dict[str, str] = DOCS) -> list[Document]:
    return [Document(doc_id, text, {"topic": doc_id}) for doc_id, text in docs.items()]


@pytest.fixture(scope="module")
def shared_cache() -> EmbeddingCache:
    """One in-memory embedding cache for the module, so each text goes through MiniLM once."""
    return EmbeddingCache()


def make_retriever(kind: str, path: Path, cache: EmbeddingCache | None = None, embedder=None) -> Retriever:
    store = open_store(kind, None if kind == "numpy" else path)
    return Retriever(store, embedder or MiniLMTextEmbedder(), k=3, cache=cache)


@pytest.mark.parametrize("kind", STORES)
def test_the_same_retrieval_passes_on_every_store(kind, tmp_path, shared_cache):
    retriever = make_retriever(kind, tmp_path / "store", shared_cache)
    report = retriever.ingest_sync(documents(), chunking=CHUNKING)

    assert report.added == report.total == 8 and report.removed == 0
    for query, relevant in QUERIES:
        results = retriever.search_sync(query, k=2)
        assert_retrieval(results, relevant, metric="recall", k=2, query=query)
        assert [r.rank for r in results] == [1, 2]
        assert results[0].score >= results[1].score and -1.0 <= results[1].score <= 1.0
        assert results[0].metadata == {"topic": results[0].doc_id}
        assert results[0].text in DOCS[results[0].doc_id]
    if kind == "chroma":
        assert (tmp_path / "store" / "chroma.sqlite3").is_file()
        assert retriever.store._client.get_settings().anonymized_telemetry is False


def test_faiss_and_chroma_rank_like_exact_search(tmp_path, shared_cache):
    retrievers = {kind: make_retriever(kind, tmp_path / kind, shared_cache) for kind in STORES}
    for retriever in retrievers.values():
        retriever.ingest_sync(documents(), chunking=CHUNKING)

    for query, _ in QUERIES:
        exact = retrievers["numpy"].search_sync(query, k=4)
        for kind in ("faiss", "chroma"):
            found = retrievers[kind].search_sync(query, k=4)
            assert [r.id for r in found] == [r.id for r in exact], kind
            assert [r.score for r in found] == pytest.approx([r.score for r in exact], abs=1e-4), kind


@pytest.mark.parametrize("kind", ["faiss", "chroma"])
def test_reingesting_a_saved_store_embeds_only_what_changed(kind, tmp_path):
    path = tmp_path / "store"
    first = make_retriever(kind, path).ingest_sync(documents(), chunking=CHUNKING)
    assert first.embedded == 8

    # A new process: a fresh retriever and an empty embedding cache over the saved store.
    unchanged = make_retriever(kind, path).ingest_sync(documents(), chunking=CHUNKING)
    assert (unchanged.unchanged, unchanged.embedded, unchanged.added, unchanged.removed) == (8, 0, 0, 0)

    edited = {k: v for k, v in DOCS.items() if k != "wifi"}
    edited["pen"] = "The pen needs no battery. Its nibs last about eight weeks. Spare nibs come in packs of nine."
    edited["manual"] = "The printed manual is in the box."
    retriever = make_retriever(kind, path)
    report = retriever.ingest_sync(documents(edited), chunking=CHUNKING)

    # pen#0 and pen#1 share the changed sentence (overlap); wifi#0 goes; manual#0 comes.
    assert (report.updated, report.added, report.removed, report.embedded) == (2, 1, 1, 3)
    assert report.unchanged == 8 - 2 - 1
    ids = [r.id for r in retriever.search_sync("Which networks can the tablet join?", k=10)]
    assert "manual#0" in ids and not any(i.startswith("wifi#") for i in ids)
    assert "eight weeks" in retriever.search_sync("How long do the nibs last?", k=1)[0].text


def test_the_in_memory_store_reingests_changes_too(tmp_path):
    retriever = make_retriever("numpy", tmp_path)
    retriever.ingest_sync(documents(), chunking=CHUNKING)

    report = retriever.ingest_sync(documents({**DOCS, "charging": "Plug the cable into the USB-C port."}),
                                   chunking=CHUNKING)

    # charging had two chunks (three sentences); now one, with new text.
    assert (report.updated, report.removed, report.added, report.embedded) == (1, 1, 0, 1)
    assert [r.id for r in retriever.search_sync("How long does charging take?", k=8)].count("charging#1") == 0


def test_the_embedding_cache_on_disk_spares_the_model_in_the_next_run(tmp_path):
    cache_file = tmp_path / "embeddings.sqlite"
    first = make_retriever("numpy", tmp_path, EmbeddingCache(cache_file)).ingest_sync(documents(), chunking=CHUNKING)
    second = make_retriever("numpy", tmp_path, EmbeddingCache(cache_file)).ingest_sync(documents(), chunking=CHUNKING)

    assert first.embedded == 8 and second.embedded == 0 and second.added == 8


@pytest.mark.parametrize("kind", ["faiss", "chroma"])
def test_a_store_path_that_is_a_file_is_refused(kind, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a store", encoding="utf-8")

    with pytest.raises(StoreError, match=rf"store path {path} is a file, not a store folder; point the store path"):
        open_store(kind, path)


@pytest.mark.parametrize(("kind", "expected"), [("faiss", "not a FAISS store"), ("chroma", "not a Chroma store")])
def test_a_folder_that_is_not_a_store_is_refused(kind, expected, tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"\xff\xd8")

    with pytest.raises(StoreError) as raised:
        open_store(kind, tmp_path)

    message = str(raised.value)
    assert str(tmp_path) in message and expected in message and "empty or new folder" in message


def test_a_damaged_faiss_store_is_refused_with_the_fix(tmp_path):
    make_retriever("faiss", tmp_path / "store").ingest_sync(documents(), chunking=CHUNKING)
    (tmp_path / "store" / "index.faiss").write_bytes(b"garbage")

    with pytest.raises(StoreError, match=r"is not a readable FAISS store .*delete the folder to rebuild it"):
        open_store("faiss", tmp_path / "store")


def test_the_faiss_manifest_records_the_embedder(tmp_path):
    make_retriever("faiss", tmp_path / "store").ingest_sync(documents(), chunking=CHUNKING)

    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())

    assert manifest["dimension"] == 384 and manifest["count"] == 8
    assert manifest["embedder_signature"].startswith("all-MiniLM-L6-v2")


@pytest.mark.parametrize("kind", ["faiss", "chroma"])
def test_a_store_built_by_another_embedder_dimension_is_refused(kind, tmp_path, make_client):
    from pytest_llmops.retrieval.embedder import ClientEmbedder

    make_retriever(kind, tmp_path / "store").ingest_sync(documents(), chunking=CHUNKING)
    # The test server's embedding model makes 16-dimensional vectors.
    other = ClientEmbedder(make_client(model="openai/test-embedder", role="embedder"))
    retriever = make_retriever(kind, tmp_path / "store", embedder=other)

    with pytest.raises(DimensionMismatchError) as raised:
        retriever.search_sync("How many days do I have?")
    message = str(raised.value)
    assert "holds 384-dimensional vectors" in message and "makes 16-dimensional ones" in message
    assert str(tmp_path / "store") in message and "re-ingest the corpus into a new, empty store" in message

    with pytest.raises(DimensionMismatchError, match="dimension mismatch"):
        retriever.ingest_sync(documents({"extra": "One more document."}), chunking=CHUNKING, prune=False)


class ReversedMiniLM(MiniLMTextEmbedder):
    """Same length as MiniLM, different vectors: another model as far as a store can tell."""

    signature = "reversed-minilm|dim:384"

    def embed_sync(self, texts):
        return super().embed_sync(texts)[:, ::-1]


def test_a_store_built_by_another_embedder_of_the_same_length_is_refused(tmp_path):
    make_retriever("faiss", tmp_path / "store").ingest_sync(documents(), chunking=CHUNKING)

    with pytest.raises(DimensionMismatchError, match=r"embedder mismatch: .* was built by embedder 'all-MiniLM"):
        make_retriever("faiss", tmp_path / "store", embedder=ReversedMiniLM()).search_sync("anything")


class ListStore:
    """A user's own store: plain Python lists, brute-force cosine. Implements the VectorStore protocol."""

    def __init__(self) -> None:
        self.dimension = None
        self.embedder_signature = None
        self.rows: dict[str, tuple[object, list[float]]] = {}

    def fingerprints(self):
        return {chunk_id: chunk.fingerprint for chunk_id, (chunk, _) in self.rows.items()}

    def upsert(self, chunks, vectors, signature):
        self.dimension, self.embedder_signature = len(vectors[0]), signature
        for chunk, vector in zip(chunks, vectors):
            self.rows[chunk.id] = (chunk, [float(x) for x in vector])

    def delete(self, ids):
        for chunk_id in ids:
            self.rows.pop(chunk_id, None)

    def search(self, vector, k):
        scored = [(i, math.fsum(a * b for a, b in zip(v, vector))) for i, (_, v) in self.rows.items()]
        return sorted(scored, key=lambda pair: -pair[1])[:k]

    def get(self, ids):
        return [self.rows[i][0] for i in ids]

    def close(self):
        pass


def test_a_users_own_store_plugs_in_through_the_protocol(shared_cache):
    retriever = Retriever(ListStore(), MiniLMTextEmbedder(), cache=shared_cache)
    retriever.ingest_sync(documents(), chunking=CHUNKING)

    for query, relevant in QUERIES:
        assert_retrieval(retriever.search_sync(query, k=2), relevant, k=2, query=query)


def test_an_object_that_is_not_a_store_is_refused():
    with pytest.raises(StoreError, match=r"does not implement the VectorStore protocol \(missing: .*fingerprints"):
        Retriever(object())


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("pinecone", "unknown store kind 'pinecone'"), ("no_such_module_xyz:make", "cannot import it")],
)
def test_an_unknown_store_kind_is_refused(kind, expected):
    with pytest.raises(StoreError, match=expected):
        open_store(kind)


def test_chroma_needs_a_folder():
    with pytest.raises(StoreError, match="chroma store needs a folder"):
        open_store("chroma")


def test_searching_an_empty_store_says_to_ingest_first():
    with pytest.raises(RetrievalError, match="is empty: ingest a corpus before searching"):
        Retriever("numpy").search_sync("anything")


def test_ingesting_an_empty_corpus_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="nothing to ingest"):
        Retriever("numpy").ingest_sync([])
    with pytest.raises(CorpusError, match="is empty"):
        Retriever("numpy").ingest_sync(tmp_path)


CHROMA_PROBE = """
import sys

connections = []
sys.addaudithook(lambda event, args: connections.append((event, args[1]))
                 if event in ("socket.connect", "socket.getaddrinfo") else None)

import numpy as np

from pytest_llmops.retrieval.corpus import Chunk
from pytest_llmops.retrieval.stores.chroma_store import ChromaStore

store = ChromaStore(sys.argv[1])
vectors = np.eye(4, dtype=np.float32)
store.upsert([Chunk(f"d{i}#0", f"d{i}", f"text {i}", 0) for i in range(4)], vectors, "probe|dim:4")
print("HIT", store.search(vectors[2], 1)[0][0])
print("CONNECTIONS", connections)
"""


def test_chroma_sends_no_telemetry_and_fetches_no_model(tmp_path):
    import os
    import subprocess
    import sys

    # A fresh process with an empty home: Chroma's default model would be downloaded under ~/.cache/chroma.
    result = subprocess.run(
        [sys.executable, "-c", CHROMA_PROBE, str(tmp_path / "store")],
        capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "HIT d2#0" in result.stdout
    assert "CONNECTIONS []" in result.stdout
    # Neither Chroma's model cache nor onnxruntime's device id (written when its model runs) appears.
    assert not (tmp_path / ".cache" / "chroma").exists()
    assert not (tmp_path / ".cache" / "Microsoft").exists()
