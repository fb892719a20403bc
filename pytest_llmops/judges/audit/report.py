"""The audit's figures: per bias a flip rate (Wilson interval) and a mean score shift (bootstrap interval).

A *flip* is an item whose verdict under the perturbation differs from its
unperturbed verdict; only items the judge answered both times count (``n``),
the rest are ``unmeasured`` with their reasons. The *score shift* is the mean
of (perturbed - unperturbed) score per item: rubric points, the share of
claims supported (faithfulness), or for pairwise the preference for the
answer the perturbation pushes (1 win, 0.5 tie, 0 loss). Accuracy is the
share of unperturbed verdicts that match the human label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmops.judges.audit.labels import AuditItem
from pytest_llmops.judges.audit.perturb import PERTURBATIONS, applies

__all__ = ["AuditReport", "BiasResult", "Judged", "Judgement", "Rate", "build_report"]

_SHIFT_UNITS = {
    "pairwise": "preference for the answer pushed (1 win, 0.5 tie, 0 loss)",
    "rubric": "rubric score points",
    "faithfulness": "share of claims supported",
}
_REASONS_KEPT = 10
_IDS_KEPT = 20


@dataclass(frozen=True)
class Judgement:
    """One judge answer: ``verdict`` (``pass``/``fail`` or ``a``/``b``/``tie``) and score, or unmeasured (``None``)."""

    verdict: str | None
    value: float | None
    reason: str


@dataclass(frozen=True)
class Judged:
    """An item's unperturbed and perturbed judgements, and the verdict the perturbation pushes toward."""

    item: AuditItem
    before: Judgement
    after: Judgement
    pushed: str | None


@dataclass
class Rate:
    """``k`` of ``n`` with its Wilson interval (``None`` without any measured item)."""

    k: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass
class BiasResult:
    """One perturbation's effect on the judge; ``applicable=False`` says why it was not measured."""

    name: str
    description: str
    applicable: bool
    reason: str = ""
    flips: Rate | None = None
    #: Flips toward the verdict the perturbation pushes (``None`` where it pushes nowhere).
    toward: int | None = None
    mean_shift: float | None = None
    shift_low: float | None = None
    shift_high: float | None = None
    n_unmeasured: int = 0
    unmeasured_reasons: list[str] = field(default_factory=list)
    flipped_ids: list[str] = field(default_factory=list)


@dataclass
class AuditReport:
    """Everything ``llmops judge audit`` found."""

    template: str
    judge_model: str
    templates: list[dict[str, str]]
    labels: str
    labels_sha256: str
    n_items: int
    confidence: float
    samples: int
    temperature: float
    shift_units: str
    accuracy: Rate
    n_unmeasured: int
    unmeasured_reasons: list[str]
    biases: list[BiasResult]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def bias(self, name: str) -> BiasResult:
        """The result for perturbation ``name`` (``order_swapped``, ``padded``, ...)."""
        return next(b for b in self.biases if b.name == name)

    def summary(self) -> str:
        """The report as a few lines of plain text."""
        pct = f"{self.confidence:.0%}"
        lines = [
            f"judge {self.judge_model} on {self.template} ("
            + ", ".join(f"{t['name']}@{t['version']}#{t['hash'][:12]}" for t in self.templates)
            + f"); {self.n_items} labelled items from {self.labels}",
            f"accuracy vs human labels: {_rate(self.accuracy)}, {pct} Wilson interval"
            + (f"; {self.n_unmeasured} unmeasured" if self.n_unmeasured else ""),
            f"{'bias':<18} {'flip rate [' + pct + ' CI]':<32} {'toward':>6}  {'mean shift [' + pct + ' CI]':<26} {'n':>4} {'unmeasured':>10}",
        ]
        for bias in self.biases:
            if not bias.applicable or bias.flips is None:
                lines.append(f"{bias.name:<18} {'not applicable' if not bias.applicable else 'unmeasured'}: {bias.reason}")
                continue
            toward = "-" if bias.toward is None else str(bias.toward)
            lines.append(
                f"{bias.name:<18} {_rate(bias.flips):<32} {toward:>6}  {_shift(bias):<26} {bias.flips.n:>4} "
                f"{bias.n_unmeasured:>10}"
            )
        lines.append(f"score shift in {self.shift_units}; repeated sampling: {self.samples} samples at temperature "
                     f"{self.temperature:g}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The report as a Markdown section (for a CI summary or a pull request)."""
        pct = f"{self.confidence:.0%}"
        refs = ", ".join(f"`{t['name']}@{t['version']}#{t['hash'][:12]}`" for t in self.templates)
        out = [
            f"## Judge audit: {self.template} with `{self.judge_model}`",
            "",
            f"Templates {refs}; {self.n_items} labelled items from `{self.labels}`.",
            "",
            f"Accuracy vs human labels: **{_rate(self.accuracy)}** ({pct} Wilson interval)"
            + (f"; {self.n_unmeasured} unmeasured." if self.n_unmeasured else "."),
            "",
            f"| bias | flip rate [{pct} CI] | toward | mean shift [{pct} CI] | n | unmeasured |",
            "|---|---|---|---|---|---|",
        ]
        for bias in self.biases:
            if not bias.applicable or bias.flips is None:
                what = "not applicable" if not bias.applicable else "unmeasured"
                out.append(f"| {bias.name} | {what}: {bias.reason} | | | | |")
                continue
            toward = "-" if bias.toward is None else str(bias.toward)
            out.append(f"| {bias.name} | {_rate(bias.flips)} | {toward} | {_shift(bias)} | {bias.flips.n} | "
                       f"{bias.n_unmeasured} |")
        out += ["", f"Score shift in {self.shift_units}. Repeated sampling: {self.samples} samples at temperature "
                f"{self.temperature:g}.", ""]
        return "\n".join(out)

    def write(self, path: str | Path) -> Path:
        """Write the report as JSON (``.json``) or Markdown (``.md``)."""
        path = Path(path)
        text = self.markdown() if path.suffix == ".md" else json.dumps(self.to_dict(), indent=2, sort_keys=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
        return path


def _rate(rate: Rate) -> str:
    if rate.rate is None:
        return f"unmeasured (0 of {rate.n})"
    return f"{rate.rate:.3f} [{rate.low:.3f}, {rate.high:.3f}] ({rate.k}/{rate.n})"


def _shift(bias: BiasResult) -> str:
    if bias.mean_shift is None:
        return "unmeasured (no scores)"
    return f"{bias.mean_shift:+.3f} [{bias.shift_low:+.3f}, {bias.shift_high:+.3f}]"


def rate(k: int, n: int, confidence: float) -> Rate:
    """``k`` of ``n`` with its Wilson interval."""
    from pytest_llmops.results.stats import wilson_interval

    if n == 0:
        return Rate(k, n, None, None, None)
    low, high = wilson_interval(k, n, confidence)
    return Rate(k, n, round(k / n, 6), round(low, 6), round(high, 6))


def _value(template: str, judgement: Judgement, answer: str | None) -> float | None:
    """The score of a judgement; pairwise: the preference for ``answer`` (``a`` when no answer is pushed)."""
    if template != "pairwise":
        return judgement.value
    if judgement.verdict is None:
        return None
    if judgement.verdict == "tie":
        return 0.5
    return 1.0 if judgement.verdict == (answer or "a") else 0.0


def _shift_interval(shifts: Sequence[float], confidence: float) -> tuple[float | None, float | None, float | None]:
    from pytest_llmops.results.stats import paired_bootstrap

    if not shifts:
        return None, None, None
    result = paired_bootstrap(shifts, confidence=confidence, resamples=5_000, seed=0)
    return round(result.mean, 6), round(result.low, 6), round(result.high, 6)


def _bias(name: str, description: str, template: str, pairs: Sequence[tuple[Judged, Sequence[Judgement]]],
          confidence: float) -> BiasResult:
    """One bias from (item, perturbed judgements) pairs: flip if any perturbed verdict differs."""
    flips = toward = measured = 0
    shifts: list[float] = []
    reasons: list[str] = []
    unmeasured = 0
    flipped: list[str] = []
    pushes = False
    for judged, afters in pairs:
        if judged.before.verdict is None:
            continue  # counted once, in the accuracy line
        for after in afters:
            if after.verdict is None:
                unmeasured += 1
                if len(reasons) < _REASONS_KEPT:
                    reasons.append(f"line {judged.item.line}: {after.reason[:200]}")
        seen = [after for after in afters if after.verdict is not None]
        if not seen:
            continue
        measured += 1
        pushes = pushes or judged.pushed is not None
        changed = [after for after in seen if after.verdict != judged.before.verdict]
        if changed:
            flips += 1
            if len(flipped) < _IDS_KEPT:
                flipped.append(judged.item.id)
            if judged.pushed is not None and any(after.verdict == judged.pushed for after in changed):
                toward += 1
        before = _value(template, judged.before, judged.pushed)
        values = [v for v in (_value(template, after, judged.pushed) for after in seen) if v is not None]
        if before is not None and values:
            shifts.append(sum(values) / len(values) - before)
    mean, low, high = _shift_interval(shifts, confidence)
    if measured == 0:
        return BiasResult(name, description, True, reason="no item was measured both unperturbed and perturbed",
                          n_unmeasured=unmeasured, unmeasured_reasons=reasons)
    return BiasResult(
        name, description, True, flips=rate(flips, measured, confidence), toward=toward if pushes else None,
        mean_shift=mean, shift_low=low, shift_high=high, n_unmeasured=unmeasured, unmeasured_reasons=reasons,
        flipped_ids=flipped,
    )


def build_report(
    *,
    template: str,
    items: Sequence[AuditItem],
    base: Sequence[Judgement],
    perturbed: dict[str, list[Judged]],
    repeats: Sequence[Sequence[Judgement]],
    samples: int,
    temperature: float,
    confidence: float,
    labels: str,
    judge_model: str,
    templates: list[dict[str, str]],
) -> AuditReport:
    """Put the judgements together into the report (pure: no judge calls)."""
    measured = [(item, j) for item, j in zip(items, base) if j.verdict is not None]
    reasons = [f"line {item.line}: {j.reason[:200]}" for item, j in zip(items, base) if j.verdict is None]
    biases = []
    for perturbation in PERTURBATIONS:
        why = applies(perturbation, template)
        if why is not None:
            biases.append(BiasResult(perturbation.name, perturbation.description, False, reason=why))
        elif perturbation.name == "repeated_sampling":
            if samples == 0:
                biases.append(BiasResult(perturbation.name, perturbation.description, False,
                                         reason="--samples 0: no repeated samples were asked"))
                continue
            pairs = [(Judged(item, before, before, None), list(answers))
                     for item, before, answers in zip(items, base, repeats)]
            biases.append(_bias(perturbation.name, perturbation.description, template, pairs, confidence))
        else:
            pairs = [(judged, [judged.after]) for judged in perturbed[perturbation.name]]
            biases.append(_bias(perturbation.name, perturbation.description, template, pairs, confidence))
    labels_path = Path(labels)
    return AuditReport(
        template=template,
        judge_model=judge_model,
        templates=templates,
        labels=labels,
        labels_sha256=hashlib.sha256(labels_path.read_bytes()).hexdigest() if labels_path.is_file() else "",
        n_items=len(items),
        confidence=confidence,
        samples=samples,
        temperature=temperature,
        shift_units=_SHIFT_UNITS[template],
        accuracy=rate(sum(j.verdict == item.label for item, j in measured), len(measured), confidence),
        n_unmeasured=len(reasons),
        unmeasured_reasons=reasons[:_REASONS_KEPT],
        biases=biases,
    )
