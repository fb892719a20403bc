"""Attack success rate: the share of examples that broke the model, per strategy, with a Wilson interval.

An ``llm_robust`` test counts each distinct example of its search (before
shrinking, which would over-count failures) under the ``strategy`` of its
generated input (``Perturbed.strategy``, ``Injection.strategy``...). A broken
example is a success of the attack. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmops.verdict import Score

#: Score name of the whole test's rate; ``robust.asr.<strategy>`` for each strategy.
ASR = "robust.asr"
_UNSAFE = re.compile(r"[^\w@-]+")


def strategy_key(strategy: str) -> str:
    """A strategy as the last part of a score name a gate can write (``typo+homoglyph`` -> ``typo_homoglyph``)."""
    return _UNSAFE.sub("_", strategy).strip("_") or "examples"


@dataclass
class Tally:
    """Distinct examples seen and broken, per strategy."""

    seen: dict[str, dict[str, bool]] = field(default_factory=dict)

    def add(self, strategy: str, example: str, broke: bool) -> None:
        # The same example tried twice counts once, as broken if it ever broke.
        bucket = self.seen.setdefault(strategy_key(strategy), {})
        bucket[example] = bucket.get(example, False) or broke

    def counts(self) -> Mapping[str, tuple[int, int]]:
        return {name: (sum(bucket.values()), len(bucket)) for name, bucket in sorted(self.seen.items())}

    def total(self) -> tuple[int, int]:
        broken = sum(b for b, _ in self.counts().values())
        return broken, sum(n for _, n in self.counts().values())

    def scores(self, max_asr: float | None, confidence: float = 0.95) -> list[Score]:
        """``robust.asr`` for the test and one ``robust.asr.<strategy>`` each (unmeasured when nothing ran)."""
        from pytest_llmops.results.stats import wilson_interval

        out = []
        for name, (broken, trials) in [(ASR, self.total()), *((f"{ASR}.{k}", v) for k, v in self.counts().items())]:
            if trials == 0:
                out.append(Score.unmeasured(name, "no example ran to completion"))
                continue
            low, high = wilson_interval(broken, trials, confidence)
            out.append(Score.measured(
                name, broken / trials, threshold=max_asr, higher_is_better=False,
                reason=f"{broken}/{trials} examples broke the model; Wilson {confidence:.0%} [{low:.3f}, {high:.3f}]",
                signature=f"asr|distinct examples before shrinking|wilson={confidence:g}",
                details={"successes": broken, "trials": trials, "wilson_low": low, "wilson_high": high},
            ))
        return out


def pooled(cases: Sequence[Any]) -> dict[str, tuple[int, int]]:
    """``{score name: (broken, trials)}`` summed over the ``robust.asr*`` scores of result cases (for reports)."""
    totals: dict[str, list[int]] = {}
    for case in cases:
        for score in case.scores:
            if (score.name == ASR or score.name.startswith(ASR + ".")) and "trials" in score.details \
                    and score.verdict != "unmeasured":
                entry = totals.setdefault(score.name, [0, 0])
                entry[0] += int(score.details["successes"])
                entry[1] += int(score.details["trials"])
    return {name: (broken, trials) for name, (broken, trials) in totals.items()}


def summary_lines(cases: Sequence[Any], *, confidence: float = 0.95, worst: int | None = 5) -> list[str]:
    """The run's attack success rate and its worst strategies, as plain lines (empty without llm_robust cases)."""
    from pytest_llmops.results.stats import wilson_interval

    counts = pooled(cases)
    if ASR not in counts:
        return []

    def rate(name: str) -> str:
        broken, trials = counts[name]
        low, high = wilson_interval(broken, trials, confidence)
        return f"{broken}/{trials} = {broken / trials:.3f}, Wilson {confidence:.0%} [{low:.3f}, {high:.3f}]"

    strategies = sorted((name for name in counts if name != ASR),
                        key=lambda name: (-counts[name][0] / counts[name][1], name))
    lines = [f"attack success rate (llm_robust): {rate(ASR)}"]
    shown = strategies if worst is None else strategies[:worst]
    lines += [f"  {name[len(ASR) + 1:]}: {rate(name)}" for name in shown]
    if len(shown) < len(strategies):
        lines.append(f"  ... {len(strategies) - len(shown)} more strategies (-v shows all)")
    return lines
