"""Sequential early stopping of a matrix's repetitions: ``llm_matrix(..., early_stop=True)``.

Each cell's repetitions are pooled across its cases as they finish. Before
a case's next repetition, its cell stops getting more when its Wilson
interval (95%) already lies wholly below another cell's (it cannot be the
best), or wholly above every other cell's (it is the best); each side needs
at least ``MIN_TRIALS`` measured repetitions first. The saved repetitions
are recorded on each case's ``repeat_pass_rate`` score (``saved``) and
summed per cell in the matrix summary.

The pooled interval treats repetitions as independent, which they are not
quite (the same case repeats): it is a rule for spending fewer calls on a
settled question, not a test; the best-vs-runner-up McNemar test at the end
is the verdict. A stopped cell's pass rate rests on fewer repetitions.
Standard library only.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from pytest_llmops.matrix.cells import Cell
from pytest_llmops.repeat import RepeatPlan
from pytest_llmops.results.stats import wilson_interval

#: Measured repetitions a cell needs before its interval may stop it (and before it may stop another).
MIN_TRIALS = 8


class CellTracker:
    """Passes and trials per cell of each matrix, as repetitions finish."""

    def __init__(self, confidence: float = 0.95, min_trials: int = MIN_TRIALS) -> None:
        self.confidence = confidence
        self.min_trials = min_trials
        self._counts: dict[str, dict[str, list[int]]] = {}
        self._lock = threading.Lock()

    def register(self, cell: Cell) -> None:
        with self._lock:
            self._counts.setdefault(cell.matrix, {}).setdefault(cell.id, [0, 0])

    def observe(self, cell: Cell, passed: bool) -> None:
        with self._lock:
            counts = self._counts.setdefault(cell.matrix, {}).setdefault(cell.id, [0, 0])
            counts[0] += int(passed)
            counts[1] += 1

    def decided(self, cell: Cell) -> str | None:
        """Why ``cell`` needs no more repetitions ("clearly below X", "clearly above the rest"), or None."""
        with self._lock:
            cells = {name: tuple(counts) for name, counts in self._counts.get(cell.matrix, {}).items()}
        mine = cells.get(cell.id)
        others = {name: counts for name, counts in cells.items() if name != cell.id}
        if mine is None or not others or mine[1] < self.min_trials:
            return None
        low, high = wilson_interval(mine[0], mine[1], self.confidence)
        intervals = {name: wilson_interval(p, n, self.confidence) for name, (p, n) in others.items() if n >= self.min_trials}
        for name, (other_low, _) in intervals.items():
            if high < other_low:
                return f"clearly below {name}"
        if len(intervals) == len(others) and all(low > other_high for _, other_high in intervals.values()):
            return "clearly above the rest"
        return None


def stopping_plan(plan: RepeatPlan, cell: Cell, state: Any) -> RepeatPlan:
    """``plan`` run one repetition at a time, stopping once the cell is decided."""
    if state.matrix_tracker is None:
        state.matrix_tracker = CellTracker(confidence=state.settings.gate_confidence)
    tracker: CellTracker = state.matrix_tracker
    for other in state.matrix_grid.get(cell.matrix, [cell]):
        # Every cell of the grid from the start: one not yet begun is not "beaten".
        tracker.register(other)
    return replace(plan, stop=lambda: tracker.decided(cell) is not None,
                   observe=lambda passed: tracker.observe(cell, passed))
