"""Load and apply the shipped combiner (``models/offline.*``).

Three files, written by ``scripts/train_hallucination.py``: ``offline.npz``
(weights, feature means and scales; read with ``allow_pickle=False``),
``offline.json`` (feature names, bias, calibration, threshold, the
competence region, the npz's sha256 and the training record) and ``offline.md`` (the model card).

A sentence's probability is ``sigmoid(a * (w . (x - mean) / scale + b) + c)``;
an answer's is the maximum over its sentences. A feature the model gives
weight 0 adds nothing, so it need not be computed (NaN in a row): the
shipped model gives ``sim_best`` weight 0, so the detector runs without
MiniLM (``HallucinationModel.uses``).
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

from pytest_llmops.hallucination.competence import Competence
from pytest_llmops.hallucination.features import FEATURES

if TYPE_CHECKING:
    import numpy as np

MODELS_DIR = Path(__file__).with_name("models")
FORMAT = "pytest-llmops-hallucination/1"
_RETRAIN = "rebuild it with scripts/train_hallucination.py or reinstall pytest-llmops"


@dataclass(frozen=True)
class HallucinationModel:
    """A calibrated logistic combiner over the per-sentence features of ``features.FEATURES``."""

    name: str
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    bias: float
    calibration: tuple[float, float]
    threshold: float
    sha256: str
    version: int
    #: where its verdicts were validated; outside it the detector declines (``competence.py``)
    competence: Competence
    header: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def uses(self, feature: str) -> bool:
        """Whether ``feature`` changes the score (its weight is not 0); an unknown name is an error."""
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r}; the features are {', '.join(FEATURES)}")
        return bool(self.weights[FEATURES.index(feature)] != 0.0)

    @property
    def signature(self) -> str:
        """How scores were computed, for ``Score.signature``: detector, version, weights hash, embedder, features.

        The embedder is named only when the model weighs its feature: with
        ``sim_best`` at weight 0 the scores do not depend on it (``embedder:none``).
        """
        embedder = "all-MiniLM-L6-v2" if self.uses("sim_best") else "none"
        return (
            f"hallucination:{self.name}|v:{self.version}|sha:{self.sha256[:12]}"
            f"|embedder:{embedder}|agg:max|features:{','.join(FEATURES)}"
        )

    def probabilities(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        """Calibrated hallucination probability of each feature row (one row per sentence).

        A feature with weight 0 may be NaN (not computed); a NaN in a weighed
        feature is an error naming it.
        """
        import numpy as np

        X = np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))
        Z = (X - self.mean) / self.scale
        unused = self.weights == 0.0
        missing = np.isnan(Z).any(axis=0) & ~unused
        if missing.any():
            names = ", ".join(f for f, m in zip(FEATURES, missing) if m)
            raise ValueError(f"feature(s) {names} not computed, but the model {self.name!r} weighs them")
        Z[:, unused] = 0.0  # adds nothing either way; a NaN there must not spread
        a, c = self.calibration
        z = a * (Z @ self.weights + self.bias) + c
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"{path}: {problem}; {_RETRAIN}")


@functools.cache
def load_model(directory: str | None = None, name: str = "offline") -> HallucinationModel:
    """Load and validate the combiner ``name`` from ``directory`` (default: the shipped one).

    Every problem (missing file, wrong format, checksum mismatch, wrong
    shapes, non-finite numbers) raises with the path and the fix.
    """
    import numpy as np

    folder = Path(directory) if directory else MODELS_DIR
    header_path, weights_path = folder / f"{name}.json", folder / f"{name}.npz"
    for path in (header_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (the hallucination detector's model); {_RETRAIN}")
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(header_path, f"not valid JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise _fail(header_path, f"format {found!r} is not {FORMAT!r}")
    for key in ("features", "bias", "calibration", "threshold", "weights_sha256"):
        if key not in header:
            raise _fail(header_path, f"missing {key!r}")
    if list(header["features"]) != list(FEATURES):
        raise _fail(header_path, f"features {header['features']} differ from this version's {list(FEATURES)}")
    blob = weights_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != header["weights_sha256"]:
        raise _fail(weights_path, f"sha256 differs from the one in {header_path.name} (files from different trainings)")
    try:
        with np.load(weights_path, allow_pickle=False) as arrays:
            weights, mean, scale = (arrays[k].astype(np.float64) for k in ("weights", "mean", "scale"))
    except (OSError, KeyError, ValueError) as error:
        raise _fail(weights_path, f"not a readable weights file ({error})") from error
    for label, array in (("weights", weights), ("mean", mean), ("scale", scale)):
        if array.shape != (len(FEATURES),) or not np.isfinite(array).all():
            raise _fail(weights_path, f"{label} must be {len(FEATURES)} finite numbers, got shape {array.shape}")
    if (scale <= 0).any():
        raise _fail(weights_path, "scale must be positive")
    a, c = header["calibration"]
    numbers = (a, c, header["bias"], header["threshold"])
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
        raise _fail(header_path, "bias, calibration and threshold must be finite numbers")
    if not 0.0 < header["threshold"] < 1.0:
        raise _fail(header_path, f"threshold {header['threshold']} is not a probability between 0 and 1")
    try:
        competence = Competence.from_header(header)
    except ValueError as error:
        raise _fail(header_path, str(error)) from error
    return HallucinationModel(
        name=name,
        weights=weights,
        mean=mean,
        scale=scale,
        bias=float(header["bias"]),
        calibration=(float(a), float(c)),
        threshold=float(header["threshold"]),
        sha256=digest,
        version=int(header.get("version", 0)),
        competence=competence,
        header=header,
    )
