"""The ``judge_calibration`` fixture: calibrate the run's judge, or require that it was.

Registered by the plugin at start-up: pytest and the standard library only at
import; the calibration code loads when a test uses the fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

__all__ = ["JudgeCalibration", "judge_calibration"]


class JudgeCalibration:
    """Calibration bound to the test's ``judge`` and the run's state folder."""

    def __init__(self, judge: Any, state_dir: Path) -> None:
        self.judge = judge
        self.state_dir = state_dir

    async def run(self, data: str | Path, *, metric: str, **options: Any) -> Any:
        """Calibrate the judge on a labelled JSONL file; returns the saved ``CalibrationReport``."""
        from pytest_llmops.judges.calibration import calibrate

        return await calibrate(self.judge, metric, data, state_dir=self.state_dir, **options)

    def require(self, metric: str, *, min_kappa: float = 0.6, **options: Any) -> Any:
        """The stored calibration; ends the test unmeasured when missing or below ``min_kappa``."""
        from pytest_llmops.judges.calibration import require_calibrated

        return require_calibrated(self.judge, metric, min_kappa=min_kappa, state_dir=self.state_dir, **options)


@pytest.fixture
def judge_calibration(judge: Any, request: pytest.FixtureRequest) -> JudgeCalibration:
    """``await judge_calibration.run("labels.jsonl", metric="faithfulness")`` or
    ``judge_calibration.require("faithfulness", min_kappa=0.6)``; reports live in ``.llmops/calibration/``."""
    from pytest_llmops.statedir import configured_state_dir

    return JudgeCalibration(judge, configured_state_dir() or request.config.rootpath / ".llmops")
