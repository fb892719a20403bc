"""Our MiniLM embedder (transformers + mean pooling) against sentence-transformers.

Embeds English sentences (WMT23 en source side) with
``pytest_llmops.models.minilm`` and with sentence-transformers loading the
same packaged model, and prints the largest difference between the vectors,
the time each library takes to import and load, and sentences per second.
This is why the project uses transformers directly: the same vectors
without the import cost of sentence-transformers.

Usage: python benchmarks/metrics_minilm_parity.py [DATASETS_DIR] [--sentences 500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_data import datasets_dir  # noqa: E402

IMPORT_TIME = {
    "transformers (ours)": "import torch, transformers; from transformers import AutoModel, AutoTokenizer",
    "sentence-transformers": "import torch, sentence_transformers",
}


def import_seconds(code: str) -> float:
    """Wall time of a fresh interpreter importing ``code`` (median of 3)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="?", default=None)
    parser.add_argument("--sentences", type=int, default=500)
    args = parser.parse_args()
    source = datasets_dir(args.datasets) / "translation" / "wmt23_en-de" / "source.txt"
    texts = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][: args.sentences]

    for label, code in IMPORT_TIME.items():
        print(f"import {label}: {import_seconds(code):.2f} s (fresh interpreter, median of 3)")

    from pytest_llmops.models import minilm

    started = time.perf_counter()
    ours = minilm.get_embedder()
    print(f"first use of ours (imports torch and transformers, loads the model): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    mine = ours.embed(texts)
    ours_rate = len(texts) / (time.perf_counter() - started)

    started = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm.model_path()), device="cpu")
    print(f"then sentence-transformers (import on top of torch + load): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    theirs = st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    st_rate = len(texts) / (time.perf_counter() - started)

    diff = abs(mine - theirs).max()
    cosine = (mine * theirs).sum(axis=1).min()
    print(
        f"{len(texts)} texts (WMT23 en segments, 1 torch thread): max |difference| {diff:.2e}, min cosine {cosine:.6f}"
    )
    print(f"speed: ours {ours_rate:.0f} texts/s, sentence-transformers {st_rate:.0f} texts/s")


if __name__ == "__main__":
    main()
