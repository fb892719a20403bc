"""Benchmark the vector stores: ingest N chunks, query M times, compare with exact search.

    nice -n 10 .venv/bin/python benchmarks/retrieval_stores.py              # 10,000 chunks, 1,000 queries
    .venv/bin/python benchmarks/retrieval_stores.py --chunks 2000 --queries 200
    .venv/bin/python benchmarks/retrieval_stores.py --vectors random       # no model: precomputed vectors

Chunks are synthetic help-centre sentences (seeded, so every run sees the
same corpus); each query is a shuffled part of one chunk. With
``--vectors minilm`` (the default) chunks and queries are embedded by the
offline MiniLM and the embedding speed is reported; with ``--vectors random``
clustered random unit vectors stand in, to time the stores alone.

For each store it prints the index build time (all chunks upserted, index
ready), the query latency of ``store.search(vector, k)`` (p50/p95, the
query's embedding not included) and recall@k against exact search (the numpy
store's brute force). Chroma runs on disk in a temporary folder. BLAS and
OpenMP run one thread unless ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` are set.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# One BLAS/OpenMP thread unless the caller chose: on a small shared machine, numpy's multi-threaded
# matrix-vector product made the numpy store's p50 ten times slower (12 ms instead of 1.3 ms at 10k).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from pytest_llmops.retrieval.corpus import Chunk
from pytest_llmops.retrieval.stores import open_store

SUBJECTS = ["tablet", "pen", "charger", "cover", "screen", "battery", "account", "notebook", "update", "keyboard",
            "stand", "cable", "warranty", "refund", "subscription", "backup", "template", "folder", "printer", "app"]
ACTIONS = ["reset", "charge", "sync", "export", "replace", "clean", "register", "cancel", "pair", "rename",
           "restore", "share", "lock", "update", "return", "calibrate", "archive", "print", "install", "move"]
DETAILS = ["within 30 days", "from the settings menu", "with the small tool", "after a restart", "using the web app",
           "before travelling", "when the light is amber", "on the order page", "every ten minutes", "at night",
           "with a dry cloth", "by email", "for two seconds", "in the share menu", "from the support portal",
           "over Wi-Fi", "while charging", "with a passcode", "under the kickstand", "in the box"]
EXTRAS = ["This keeps your notes safe.", "Support can help if it fails.", "It takes a few minutes.",
          "The light blinks while it works.", "Nothing is deleted.", "You need the latest software.",
          "Ask an administrator first.", "It works offline too.", "A receipt is sent to you.", "Try again later."]


def make_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for n in range(count):
        subject, action, detail = rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(DETAILS)
        extra = " ".join(rng.sample(EXTRAS, 2))
        texts.append(f"To {action} the {subject} (model {n % 97}), go {detail}. {extra} Article {n}.")
    return texts


def make_queries(texts: list[str], count: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    queries = []
    for _ in range(count):
        words = rng.choice(texts).rstrip(".").split()
        queries.append(" ".join(rng.sample(words, k=max(3, len(words) // 2))))
    return queries


def minilm_vectors(texts: list[str], label: str):
    from pytest_llmops.models import minilm

    embedder = minilm.get_embedder()
    embedder.embed(["warm up"])
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    print(f"MiniLM embedded {len(texts)} {label} in {seconds:.1f} s: {len(texts) / seconds:.0f} embeddings/s")
    return vectors


def random_vectors(count: int, dim: int, seed: int, centres=None):
    import numpy as np

    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.normal(size=(64, dim))
    vectors = centres[rng.integers(0, len(centres), size=count)] + 0.6 * rng.normal(size=(count, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return vectors, centres


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--vectors", choices=("minilm", "random"), default="minilm")
    parser.add_argument("--stores", default="numpy,faiss,faiss-hnsw,chroma")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.chunks < args.k or args.queries < 1:
        parser.error("--chunks must be at least --k, and --queries at least 1")

    texts = make_texts(args.chunks, args.seed)
    queries = make_queries(texts, args.queries, args.seed)
    chunks = [Chunk(f"doc{n}#0", f"doc{n}", text, 0, 0, len(text)) for n, text in enumerate(texts)]
    if args.vectors == "minilm":
        vectors = minilm_vectors(texts, "chunks")
        query_vectors = minilm_vectors(queries, "queries")
        signature = "all-MiniLM-L6-v2|pool:mean|norm:l2|max_tokens:256|dim:384"
    else:
        vectors, centres = random_vectors(args.chunks, 384, args.seed)
        query_vectors, _ = random_vectors(args.queries, 384, args.seed + 1, centres)
        signature = "random-clusters|dim:384"
        print(f"precomputed random vectors: {args.chunks} chunks, {args.queries} queries, 384 dimensions")

    print(f"\n{'store':<12}{'build s':>10}{'p50 ms':>10}{'p95 ms':>10}{'recall@' + str(args.k):>12}")
    exact: list[set[str]] | None = None
    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as folder:
        for kind in ["numpy"] + [s for s in args.stores.split(",") if s and s != "numpy"]:
            store = open_store(kind, Path(folder) / kind if kind != "numpy" else None)
            started = time.perf_counter()
            store.upsert(chunks, vectors, signature)
            # numpy stacks its matrix and FAISS builds its index on first use: count that in the build time.
            if hasattr(store, "build"):
                store.build()
            elif hasattr(store, "matrix"):
                store.matrix()
            build = time.perf_counter() - started
            latencies, found = [], []
            for vector in query_vectors:
                started = time.perf_counter()
                hits = store.search(vector, args.k)
                latencies.append((time.perf_counter() - started) * 1000)
                found.append({chunk_id for chunk_id, _ in hits})
            if exact is None:
                exact = found
            recall = statistics.fmean(len(f & e) / len(e) for f, e in zip(found, exact))
            print(f"{kind:<12}{build:>10.2f}{percentile(latencies, 0.5):>10.3f}"
                  f"{percentile(latencies, 0.95):>10.3f}{recall:>12.4f}")
            store.close()


if __name__ == "__main__":
    main()
