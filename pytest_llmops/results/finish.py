"""The end of a run on the controller: gates, baseline comparison, exit status, files.

Order matters: the results are assembled first, then compared with the
baseline and gated, then the exit status is settled, and only then is
everything written, so the file records the verdict the run really had.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmops import redact
from pytest_llmops.gates.evaluate import evaluate_gates, in_scope
from pytest_llmops.gates.parse import Gate, parse_gates
from pytest_llmops.reporting.outputs import ReportWriteError, write_outputs
from pytest_llmops.results.baseline import BaselineError, compare_runs, load_baseline, save_baseline
from pytest_llmops.results.latency import latency_groups
from pytest_llmops.results.models import (
    CaseResult,
    RunResult,
    ScoreResult,
    ShardRecord,
    environment,
    redacted,
    write_results,
)
from pytest_llmops.results.previous import drop_previous
from pytest_llmops.results.summary import suite_errors_problem, summarize
from pytest_llmops.review.select import mark_case
from pytest_llmops.session import LLMOpsState
from pytest_llmops.settings import BASELINES_FOLDER

if TYPE_CHECKING:
    from pytest_llmops.history.drift_trend import DriftPoint
    from pytest_llmops.history.store import SuiteRun

#: The run's exit status when a gate failed (or was unmeasured) or a baseline comparison found a
#: significant regression: pytest's own codes stop at 5.
EXIT_GATES_FAILED = 6
_INTERRUPTED = 2
_NO_TESTS_RAN = 5


@dataclass
class RunEnd:
    """What the end of the run decided, for the terminal summary."""

    run: RunResult
    exit_status: int
    results_path: Path | None = None
    baseline_saved: Path | None = None
    outputs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tolerated: int = 0
    #: The MLflow run ``--llmops-mlflow`` logged this run as.
    mlflow_run_id: str | None = None


def settings_record(state: LLMOpsState) -> dict[str, Any]:
    """The settings as JSON-ready values, with where each came from."""
    data: dict[str, Any] = {}
    for item in fields(state.settings):
        value = getattr(state.settings, item.name)
        if item.name == "sources":
            data["sources"] = dict(value)
        elif isinstance(value, Path):
            data[item.name] = str(value)
        elif isinstance(value, tuple):
            data[item.name] = [str(v) for v in value]
        else:
            data[item.name] = value
    return data


def baselines_folder(state: LLMOpsState) -> Path:
    return Path(state.config.rootpath) / BASELINES_FOLDER


def assemble(state: LLMOpsState, exit_status: int) -> RunResult:
    """The run's results (no gates or comparison yet)."""
    cases = list(state.cases.values())
    for case in cases:
        mark_case(case)
    case_results = [CaseResult.model_validate(case.to_dict()) for case in cases]
    return RunResult(
        started_at=state.started_at,
        finished_at=time.time(),
        interrupted=exit_status == _INTERRUPTED,
        exit_status=exit_status,
        settings=settings_record(state),
        environment=environment(Path(state.config.rootpath), case_results),
        summary=summarize(cases).to_dict(),
        cases=case_results,
        group_scores=[ScoreResult.model_validate(score.to_dict()) for score in state.group_scores],
        latency=latency_groups(case_results),
        matrices=_matrices(state, case_results),
    )


def _matrices(state: LLMOpsState, cases: list[CaseResult]) -> list:
    """Per-cell figures of each ``llm_matrix`` (the module, with scipy, loads only when a case had a cell)."""
    if not any(case.matrix is not None for case in cases):
        return []
    from pytest_llmops.matrix.summary import summarize_matrices

    return summarize_matrices(cases, confidence=state.settings.gate_confidence, alpha=state.settings.compare_alpha)


def tolerated_failures(gates: list[Gate], cases: list[CaseResult], other_failures: int) -> int | None:
    """How many failing cases the gates take responsibility for, or None if some failure is not covered.

    A ``pass_rate`` gate covers the failed eval cases in its scope, an
    ``unmeasured_rate`` gate the unmeasured ones, a ``robust.asr`` gate the
    failed ``llm_robust`` cases: with such a gate, the gate
    (not each case) decides the run. Errors of the suite (state ``error``: a
    broken template, cache or test code) and failures outside any eval case
    (a plain test, a corpus score) are never covered.
    """
    if other_failures:
        return None
    covered = 0
    for case in cases:
        if case.state == "error":
            return None
        family = {"failed": "pass_rate", "unmeasured": "unmeasured_rate"}.get(case.state)
        if family is None:
            continue
        # A failed llm_robust case is an attack that worked: an attack-success-rate gate over it decides too.
        families = {family, "asr"} if family == "pass_rate" and "llm_robust" in case.markers else {family}
        if not any(g.family in families and in_scope(g, case) for g in gates):
            return None
        covered += 1
    return covered


def finish_run(state: LLMOpsState, exit_status: int, *, other_failures: int) -> RunEnd:
    """Gate, compare, settle the exit status and write the results; never raises for bad input."""
    settings = state.settings
    run = assemble(state, exit_status)
    end = RunEnd(run=run, exit_status=exit_status)
    errors = suite_errors_problem(run.cases)
    if errors:
        end.problems.append(errors)
    gates = parse_gates(list(settings.gates), source="llmops_gates") + state.suite_gates
    updates: dict = {}
    if state.shard is not None:
        # A shard's gates are deferred: only the merge of every shard has the numbers to decide them.
        updates["shard"] = ShardRecord(**state.shard, gates=[_scoped_expression(g) for g in gates],
                                       gates_within={_scoped_expression(g): g.within for g in gates if g.within})
        updates["corpus_state"] = state.corpus_state
    elif gates:
        updates["gates"] = evaluate_gates(gates, run.cases, confidence=settings.gate_confidence)
    if settings.compare and state.shard is None:
        try:
            name, baseline, warnings = _baseline(state)
        except (BaselineError, ValueError) as exc:
            end.problems.append(str(exc))
        else:
            comparison = compare_runs(
                run, baseline, name=name, tolerance=settings.compare_tolerance, alpha=settings.compare_alpha
            )
            updates["comparison"] = comparison.model_copy(update={"warnings": warnings + comparison.warnings})
    run = run.model_copy(update=updates)

    status = exit_status
    refused = any(g.verdict != "pass" for g in run.gates) or (run.comparison is not None and run.comparison.regressed)
    if settings.compare and run.comparison is None and state.shard is None:
        refused = True  # asked to compare, could not: not a pass
    if status in (0, 1):
        if refused:
            status = EXIT_GATES_FAILED
        elif status == 1 and gates:
            covered = tolerated_failures(gates, run.cases, other_failures)
            if covered:
                end.tolerated = covered
                status = 0
    if status == _NO_TESTS_RAN and state.shard is not None and state.shard["cases_total"]:
        # More shards than cases leaves some empty: their (empty) file is still needed by the merge.
        status = 0
    end.exit_status = status
    # From here on everything is written or shown: the results, baseline, reports and terminal summary.
    run = redacted(run.model_copy(update={"exit_status": status, "finished_at": time.time()}))
    end.run = run

    # Each file is written on its own: one that fails is named in the summary, the others still come.
    try:
        write_results(run, settings.results, already_redacted=True)
    except OSError as exc:
        end.problems.append(
            f"cannot write the results file {settings.results} (--llmops-results / llmops_results): "
            f"{exc.strerror or exc}. This run's results are not saved; choose a path in a writable folder."
        )
    else:
        end.results_path = settings.results
        drop_previous(settings.results)
    history: list[SuiteRun] = []
    drift: dict[str, list[DriftPoint]] = {}
    if settings.history is not None and run.shard is None:  # the merged run is the one to keep
        history, drift = _append_history(run, state, end)
    if settings.save_baseline:
        if run.interrupted:
            end.problems.append(f"baseline {settings.save_baseline!r} not saved: the run was interrupted")
        else:
            _save_baseline(run, state, end)
    try:
        end.outputs = write_outputs(
            run, html_path=settings.html, markdown_path=settings.markdown, history=history, drift=drift
        )
    except ReportWriteError as exc:
        end.outputs = exc.written
        end.problems.extend(exc.problems)
    for path in (settings.html, settings.markdown):
        if path is not None and path in end.outputs:
            drop_previous(path)
    if settings.mlflow is not None and run.shard is None:  # a shard is exported once merged
        _export_mlflow(run, state, end)
    end.problems = [redact.redact_text(problem) for problem in end.problems]
    return end


def _scoped_expression(gate: Gate) -> str:
    """The gate as text ``parse_gates`` reads back, its scope included."""
    return gate.expression if gate.scope is None or gate.expression.lstrip().startswith("[") else f"[{gate.scope}] {gate.expression}"


def _save_baseline(run: RunResult, state: LLMOpsState, end: RunEnd) -> None:
    name = state.settings.save_baseline
    assert name is not None
    folder = baselines_folder(state)
    try:
        end.baseline_saved = save_baseline(run, folder, name, already_redacted=True)
    except OSError as exc:
        end.problems.append(f"baseline {name!r} not saved: cannot write {folder / (name + '.json')}: {exc.strerror or exc}")
    except BaselineError as exc:
        end.problems.append(f"baseline {name!r} not saved: {exc}")


def _baseline(state: LLMOpsState) -> tuple[str, RunResult, list[str]]:
    """The run to compare with: a named baseline file, or a run of the history (``main@latest``)."""
    settings = state.settings
    assert settings.compare is not None
    if "@" not in settings.compare:
        return settings.compare, load_baseline(baselines_folder(state), settings.compare), []
    from pytest_llmops.history.record import baseline_from_history

    history = settings.history or Path(state.config.rootpath) / ".llmops" / "history.sqlite"
    return baseline_from_history(history, settings.compare, max_age_s=settings.compare_max_age)


def _append_history(
    run: RunResult, state: LLMOpsState, end: RunEnd
) -> tuple[list[SuiteRun], dict[str, list[DriftPoint]]]:
    """Append the run to the history; returns the suite's recent runs (this one last) for the report,
    and, when this run's drift checks kept embedding summaries, their drift over those runs."""
    from pytest_llmops.history.record import append_run, current_branch, suite_of
    from pytest_llmops.history.store import HistoryStore

    path = state.settings.history
    assert path is not None
    root = Path(state.config.rootpath)
    try:
        append_run(path, run, root)
        if state.settings.html is None:
            return [], {}
        with HistoryStore(path) as store:
            branch = current_branch(root)
            history = store.suite_history(suite_of(run), branch=branch)
            if not _keeps_drift_summaries(run):
                return history, {}
            from pytest_llmops.history.drift_trend import drift_over_time

            # The same runs as the pass-rate chart: this suite on this branch, the last ones.
            return history, drift_over_time(store, suite=suite_of(run), branch=branch, limit=len(history))
    except (OSError, ValueError, sqlite3.Error) as exc:
        end.problems.append(
            f"run not added to the history {path} (--llmops-history / llmops_history): {exc}. "
            "The results file has it; `llmops history import` adds it later."
        )
        return [], {}


def _keeps_drift_summaries(run: RunResult) -> bool:
    # Checked on the results, so that a run without drift checks imports no numpy for the report.
    return any("embedding_summary" in score.details for case in run.cases for score in case.scores)


def _export_mlflow(run: RunResult, state: LLMOpsState, end: RunEnd) -> None:
    """``--llmops-mlflow``: log the finished run to MLflow; a failure is named, the run's files stay."""
    from pytest_llmops.exports.mlflow import MLflowExportError, export_run
    from pytest_llmops.history.record import current_branch
    from pytest_llmops.history.store import run_id_of

    settings = state.settings
    assert settings.mlflow is not None
    root = Path(state.config.rootpath)
    try:
        done = export_run(
            run, tracking_uri=settings.mlflow, experiment=settings.mlflow_experiment, run_id=run_id_of(run),
            branch=current_branch(root), results_file=end.results_path,
            reports=[path for path in (settings.html, settings.markdown) if path is not None and path in end.outputs],
            prompt_dirs=list(settings.prompts),
        )
    except MLflowExportError as exc:
        results = end.results_path or settings.results
        if results.is_absolute() and results.is_relative_to(root):
            results = results.relative_to(root)
        end.problems.append(
            f"run not exported to MLflow (--llmops-mlflow / llmops_mlflow): {exc}. "
            f"The results file has it; `llmops export mlflow {results}` exports it later."
        )
        return
    end.mlflow_run_id = done.mlflow_run_id
    end.problems.extend(f"MLflow export: {note}" for note in done.notes)

