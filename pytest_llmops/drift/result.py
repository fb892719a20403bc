"""The immutable result of one drift test, and the errors the drift package raises.

Standard library only: this module is safe to import anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class DriftInputError(ValueError):
    """The samples handed to a drift test cannot be compared (shape, NaN, size, option)."""


class InsufficientDataError(DriftInputError):
    """Too few samples for the test asked for; assertions report this as unmeasured."""


class EmbedderMismatchError(DriftInputError):
    """The two samples were embedded by different embedders, so their vectors are not comparable."""


@dataclass(frozen=True)
class DriftResult:
    """What one two-sample drift test found.

    ``statistic`` is the test's own number (MMD², a centroid distance, a
    classifier's ROC AUC, a share of drifted components) and ``p_value`` the
    probability of a statistic at least as large when both samples come from
    the same distribution. The samples drifted when ``p_value < alpha``.
    ``signature`` says exactly how the number was computed, so two results are
    only compared when it matches. ``details`` holds effect sizes and the
    test's internals (bandwidth, folds, per-component counts...), JSON-ready.
    """

    method: str
    statistic: float
    statistic_name: str
    p_value: float
    alpha: float
    n_current: int
    n_baseline: int
    seed: int | None
    n_permutations: int | None
    signature: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("statistic", "p_value", "alpha"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"drift result {self.method!r}: {name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"drift result {self.method!r}: p_value {self.p_value} is outside [0, 1]")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def drifted(self) -> bool:
        """True when the test rejects "same distribution" at level ``alpha``."""
        return self.p_value < self.alpha

    def summary(self) -> str:
        """One line for humans: the verdict, the statistic, the p-value and the sample sizes."""
        verdict = "drift" if self.drifted else "no drift"
        test = f"permutation p = {self.p_value:.4g} over {self.n_permutations} permutations"
        if self.n_permutations is None:
            test = f"p = {self.p_value:.4g}"
        return (
            f"{verdict}: {self.statistic_name} = {self.statistic:.4g} ({test}, alpha {self.alpha:g}); "
            f"n current {self.n_current}, baseline {self.n_baseline}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``Score.details`` and the CLI's JSON output use it)."""
        return {
            "method": self.method,
            "statistic": self.statistic,
            "statistic_name": self.statistic_name,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "drifted": self.drifted,
            "n_current": self.n_current,
            "n_baseline": self.n_baseline,
            "seed": self.seed,
            "n_permutations": self.n_permutations,
            "signature": self.signature,
            "details": _plain(self.details),
        }


def _plain(value: Any) -> Any:
    """Mappings and tuples inside details, turned into dicts and lists for JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
