"""Writes the run's results file at the end of the session (controller only)."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from pytest_llmops.results.models import CaseResult, RunResult, ScoreResult, environment, write_results
from pytest_llmops.results.summary import summarize
from pytest_llmops.session import LLMOpsState

#: pytest's exit status for a run stopped by Ctrl-C or a fatal error mid-run.
_INTERRUPTED = 2


def settings_record(state: LLMOpsState) -> dict[str, Any]:
    """The settings as JSON-ready values, with where each came from."""
    settings = state.settings
    data: dict[str, Any] = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        if item.name == "sources":
            data["sources"] = dict(value)
        elif isinstance(value, Path):
            data[item.name] = str(value)
        elif isinstance(value, tuple):
            data[item.name] = [str(v) for v in value]
        else:
            data[item.name] = value
    return data


def write_run(state: LLMOpsState, exit_status: int) -> Path:
    """Validate and write everything the run measured; returns the file's path."""
    cases = list(state.cases.values())
    result = RunResult(
        started_at=state.started_at,
        finished_at=time.time(),
        interrupted=exit_status == _INTERRUPTED,
        exit_status=exit_status,
        settings=settings_record(state),
        environment=environment(Path(state.config.rootpath)),
        summary=summarize(cases).to_dict(),
        cases=[CaseResult.model_validate(case.to_dict()) for case in cases],
        group_scores=[ScoreResult.model_validate(score.to_dict()) for score in state.group_scores],
    )
    path = state.settings.results
    write_results(result, path)
    state.results_written = path
    return path
