"""Load and run the shipped linear text classifiers (toxicity, injection, indirect injection).

A model is three files in ``pytest_llmops/safety/models/``: ``NAME.npz``
(the weight vector, float16, loaded with ``allow_pickle=False``), ``NAME.json``
(feature settings, bias, calibration, default threshold, the npz's sha256 and
the training record) and ``NAME.md`` (the model card). Loading is lazy and
cached: nothing is read until a detector first runs.

Scores are calibrated probabilities: ``sigmoid(a * (w . x + b) + c)`` with
``a`` and ``c`` fitted on out-of-source predictions, so 0.8 means that about
80% of texts scored 0.8 were positive in sources the model had not seen.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmops.safety.features import FeatureSpec, linear_scores
from pytest_llmops.safety.segment import segments

if TYPE_CHECKING:
    import numpy as np

MODELS_DIR = Path(__file__).with_name("models")
FORMAT = "pytest-llmops-linear-text/1"


def _numpy() -> Any:
    try:
        import numpy as np
    except ImportError as error:  # pragma: no cover - numpy is a declared dependency of the safety extra
        raise ImportError(
            "the offline safety detectors need numpy; install it with: pip install 'pytest-llmops[safety]'"
        ) from error
    return np


@dataclass(frozen=True)
class LinearTextModel:
    """A calibrated logistic model over hashed n-grams."""

    name: str
    spec: FeatureSpec
    weights: np.ndarray
    bias: float
    calibration: tuple[float, float]
    threshold: float
    segment_chars: int
    header: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def signature(self) -> str:
        """How scores were computed, for ``Score.signature``: model, version, weights hash prefix."""
        digest = self.header.get("weights_sha256", "")[:12]
        return f"model:{self.name}|v:{self.header.get('version', '?')}|sha:{digest}|features:ngram{self.spec.bits}"

    def raw_logits(self, texts: Sequence[str]) -> np.ndarray:
        return linear_scores(texts, self.spec, self.weights) + self.bias

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probability for each text, scored whole."""
        np = _numpy()
        a, c = self.calibration
        z = a * self.raw_logits(texts) + c
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))

    def score_segments(self, text: str, *, always: bool = False) -> tuple[float, tuple[int, int]]:
        """Score of ``text`` and the span it comes from: the whole text if short, else its worst segment.

        ``always`` scores segments even in a short text (for per-sentence models).
        """
        if len(text) <= self.segment_chars and not always:
            return float(self.probabilities([text])[0]), (0, len(text))
        spans = segments(text, max_chars=self.segment_chars)
        if not spans:
            return float(self.probabilities([text])[0]), (0, len(text))
        probs = self.probabilities([text[a:b] for a, b in spans])
        best = int(probs.argmax())
        return float(probs[best]), spans[best]


def _check_header(header: dict[str, Any], path: Path) -> None:
    if header.get("format") != FORMAT:
        raise ValueError(
            f"{path}: format {header.get('format')!r} is not {FORMAT!r}; retrain with scripts/train_safety.py"
        )
    for key in ("bias", "calibration", "threshold", "features", "weights_sha256"):
        if key not in header:
            raise ValueError(
                f"{path}: missing {key!r}; the model header is incomplete, retrain with scripts/train_safety.py"
            )


@functools.cache
def load_model(name: str, directory: str | None = None) -> LinearTextModel:
    """Load model ``name`` (``"toxicity"``, ``"injection"``, ``"indirect"``) from ``directory`` (default: shipped)."""
    np = _numpy()
    folder = Path(directory) if directory else MODELS_DIR
    header_path, weights_path = folder / f"{name}.json", folder / f"{name}.npz"
    if not header_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(
            f"no model {name!r} in {folder} (need {name}.json and {name}.npz); "
            "reinstall pytest-llmops or run scripts/train_safety.py to build it"
        )
    header = json.loads(header_path.read_text(encoding="utf-8"))
    _check_header(header, header_path)
    blob = weights_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != header["weights_sha256"]:
        raise ValueError(
            f"{weights_path} does not match {header_path.name} (sha256 differs); the two files come from different trainings"
        )
    with np.load(weights_path, allow_pickle=False) as arrays:
        weights = arrays["weights"].astype(np.float32)
    spec = FeatureSpec.from_dict(header["features"])
    if weights.shape != (spec.dim,):
        raise ValueError(f"{weights_path}: weights have shape {weights.shape}, expected ({spec.dim},)")
    a, c = header["calibration"]
    if not all(math.isfinite(v) for v in (a, c, header["bias"], header["threshold"])):
        raise ValueError(f"{header_path}: non-finite numbers in the header")
    return LinearTextModel(
        name=name,
        spec=spec,
        weights=weights,
        bias=float(header["bias"]),
        calibration=(float(a), float(c)),
        threshold=float(header["threshold"]),
        segment_chars=int(header.get("segment_chars", 400)),
        header=header,
    )
