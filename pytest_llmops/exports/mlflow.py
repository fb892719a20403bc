"""Export an eval run to MLflow: one MLflow run per pytest-llmops run.

What lands in MLflow (read back by ``tests/test_export_mlflow.py``):

- **params**: the models and judges called, each prompt template's ``prompt.<name>:<version>`` with its hash,
  and the run's settings (``setting.<name>``);
- **metrics**: every gate's value (``gate.<expression>``, see :func:`gate_key`), each score's mean over the cases
  (``score.<name>.mean``), corpus scores (``corpus.<name>``), the pass rate, the case counts, cost,
  tokens and latency per role and model;
- **tags**: the git revision and branch, the verdict (``pass`` / ``fail`` / ``interrupted``) and the
  pytest-llmops run id, which makes a second export of the same results a no-op;
- **artifacts**: the results file, a per-case table (``cases.csv``), any report files given, and
  the prompt templates used (also registered in MLflow's prompt registry where the store has one).

mlflow is imported here only (the ``[mlflow]`` extra), never when the plugin loads.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmops.results.models import RunResult

#: MLflow's limits (mlflow.utils.validation): what one log_batch call and one param value may hold.
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS = 1000, 100, 100
_PARAM_VALUE_MAX = 6000
_KEY_MAX = 250
#: Characters MLflow accepts in metric, param and tag keys; anything else becomes "_".
_KEY_UNSAFE = re.compile(r"[^\w\-. :/]")
RUN_ID_TAG = "llmops.run_id"
INSTALL_HINT = "pip install 'pytest-llmops[mlflow]'"


class MLflowExportError(RuntimeError):
    """The export could not be done; the message says why and what to do."""


@dataclass
class MLflowExport:
    """What an export did: the MLflow run it wrote (or found), and anything it could not log."""

    mlflow_run_id: str
    experiment_id: str
    created: bool
    notes: list[str] = field(default_factory=list)


def metric_key(text: str) -> str:
    """``text`` as an MLflow key: unsafe characters replaced, at most 250 characters."""
    key = _KEY_UNSAFE.sub("_", text.strip())
    return key[:_KEY_MAX]


def run_verdict(run: RunResult) -> str:
    """The run's decision in one word, as the history lists it: ``pass`` (exit status 0), ``fail``, or
    ``interrupted``."""
    if run.interrupted:
        return "interrupted"
    return "pass" if run.exit_status == 0 else "fail"


_GATE_OPERATORS = ((">=", " ge "), ("<=", " le "), ("==", " eq "), (">", " gt "), ("<", " lt "))


def gate_key(expression: str) -> str:
    """A gate as a readable metric key: ``[suite=a/b] pass_rate.lower>=0.75`` becomes
    ``gate.suite:a/b pass_rate.lower ge 0.75`` (MLflow keys allow no brackets, ``=``, ``<`` or ``>``)."""
    text = expression.strip()
    for operator, word in _GATE_OPERATORS:
        text = text.replace(operator, word)
    text = text.replace("[", "").replace("]", "").replace("=", ":")
    return metric_key("gate." + " ".join(text.split()))


def params_of(run: RunResult) -> dict[str, str]:
    """The run's models, prompt versions and settings as MLflow params (strings, bounded length)."""
    params: dict[str, str] = {}
    models = sorted({(call.role, call.model) for case in run.cases for call in case.calls})
    for role in sorted({role for role, _ in models}):
        params[f"models.{role}"] = ", ".join(model for r, model in models if r == role)
    for case in run.cases:
        for prompt in case.prompts:
            params[f"prompt.{prompt.name}:{prompt.version}"] = prompt.hash
    for name, value in sorted(run.settings.items()):
        if value is None or value == [] or value == {}:
            continue
        params[f"setting.{name}"] = value if isinstance(value, str) else _compact(value)
    return {metric_key(k): v[:_PARAM_VALUE_MAX] for k, v in params.items()}


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def metrics_of(run: RunResult) -> dict[str, float]:
    """Every gate value, score mean, corpus score, count and cost/latency figure of the run.

    Unmeasured values (None) are left out rather than logged as 0 or NaN.
    """
    metrics: dict[str, float] = {}
    counted = [case for case in run.cases if case.state in ("passed", "failed")]
    for state in ("passed", "failed", "unmeasured", "error", "skipped", "xfailed"):
        metrics[f"cases.{state}"] = float(sum(case.state == state for case in run.cases))
    if counted:
        metrics["pass_rate"] = sum(case.state == "passed" for case in counted) / len(counted)
    for gate in run.gates:
        if gate.value is not None:
            metrics[gate_key(gate.expression)] = float(gate.value)
    values: dict[str, list[float]] = {}
    for case in run.cases:
        for score in case.scores:
            if score.value is not None:
                values.setdefault(score.name, []).append(score.value)
    for name, numbers in values.items():
        metrics[f"score.{name}.mean"] = statistics.fmean(numbers)
    for score in run.group_scores:
        if score.value is not None:
            metrics[f"corpus.{score.name}"] = float(score.value)
    for group in run.latency:
        if group.group != "all":
            continue
        prefix = f"latency.{group.role}.{group.model}"
        for name in ("p50_s", "p95_s", "p99_s", "ttft_p50_s", "ms_per_token", "cost_usd", "tokens_in", "tokens_out"):
            value = getattr(group, name, None)
            if isinstance(value, (int, float)):
                metrics[f"{prefix}.{name}"] = float(value)
    return {metric_key(k): v for k, v in metrics.items()}


def tags_of(run: RunResult, *, run_id: str, branch: str | None) -> dict[str, str]:
    tags = {RUN_ID_TAG: run_id, "llmops.verdict": run_verdict(run), "mlflow.source.type": "JOB"}
    if run.environment.git_revision:
        tags["mlflow.source.git.commit"] = run.environment.git_revision
        tags["llmops.git_revision"] = run.environment.git_revision
    if branch:
        tags["llmops.git_branch"] = branch
    if run.comparison is not None:
        tags["llmops.compared_with"] = run.comparison.baseline_name
    return tags


def cases_table(run: RunResult) -> str:
    """The cases as CSV: node id, state, reason, duration, then one column per score name."""
    names = sorted({score.name for case in run.cases for score in case.scores})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["nodeid", "state", "reason", "duration_s", *names])
    for case in run.cases:
        by_name = {score.name: score.value for score in case.scores}
        writer.writerow(
            [case.nodeid, case.state, case.reason, f"{case.duration_s:.3f}",
             *("" if by_name.get(name) is None else by_name[name] for name in names)]
        )
    return out.getvalue()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _import_mlflow() -> Any:
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MLflowExportError(f"MLflow export needs the mlflow package ({exc}); install it: {INSTALL_HINT}") from None
    return MlflowClient


def export_run(
    run: RunResult,
    *,
    tracking_uri: str,
    experiment: str = "pytest-llmops",
    run_id: str,
    branch: str | None = None,
    results_file: Path | None = None,
    reports: Sequence[Path] = (),
    prompt_dirs: Sequence[Path] = (),
) -> MLflowExport:
    """Log ``run`` as one MLflow run in ``experiment`` at ``tracking_uri``.

    ``run_id`` is pytest-llmops' id of the run (see ``history.store.run_id_of``): an MLflow run that
    already carries it is returned as it is, so exporting the same results twice logs nothing twice.
    ``prompt_dirs`` are searched for the templates the run used (matched by content hash).
    """
    client_class = _import_mlflow()
    try:
        client = client_class(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        experiment_id = _experiment(client, experiment)
        existing = client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{run_id}'", max_results=1
        )
        if existing:
            return MLflowExport(existing[0].info.run_id, experiment_id, created=False)
        return _log_new_run(
            client, experiment_id, run, run_id=run_id, branch=branch,
            results_file=results_file, reports=reports, prompt_dirs=prompt_dirs,
        )
    except MLflowExportError:
        raise
    except Exception as exc:  # mlflow raises MlflowException, OSError, requests errors...
        raise MLflowExportError(f"MLflow at {tracking_uri}: {type(exc).__name__}: {exc}") from exc


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise MLflowExportError(f"MLflow experiment {name!r} is deleted; restore it or export with another --experiment")
        return str(found.experiment_id)
    return str(client.create_experiment(name))


def _log_new_run(
    client: Any,
    experiment_id: str,
    run: RunResult,
    *,
    run_id: str,
    branch: str | None,
    results_file: Path | None,
    reports: Sequence[Path],
    prompt_dirs: Sequence[Path],
) -> MLflowExport:
    from mlflow.entities import Metric, Param, RunTag

    started_ms, finished_ms = int(run.started_at * 1000), int(run.finished_at * 1000)
    mlflow_run = client.create_run(
        experiment_id, start_time=started_ms, run_name=f"llmops-{run_id[:8]}",
        tags=tags_of(run, run_id=run_id, branch=branch),
    )
    mlflow_id = mlflow_run.info.run_id
    export = MLflowExport(mlflow_id, experiment_id, created=True)
    status = "FAILED"
    try:
        metrics = [Metric(key, value, finished_ms, 0) for key, value in metrics_of(run).items()]
        params = [Param(key, value) for key, value in params_of(run).items()]
        for batch in _chunks(metrics, _BATCH_METRICS):
            client.log_batch(mlflow_id, metrics=list(batch))
        for batch in _chunks(params, _BATCH_PARAMS):
            client.log_batch(mlflow_id, params=list(batch))
        client.log_text(mlflow_id, cases_table(run), "cases.csv")
        if results_file is not None and results_file.is_file():
            client.log_artifact(mlflow_id, str(results_file))
        else:
            client.log_text(mlflow_id, run.model_dump_json(indent=2), "results.json")
        for report in reports:
            if report.is_file():
                client.log_artifact(mlflow_id, str(report), "reports")
        export.notes.extend(_log_prompts(client, mlflow_id, run, prompt_dirs))
        status = "FINISHED"
    finally:
        # A run half logged is marked FAILED (and carries the run id tag), never left RUNNING forever.
        client.set_terminated(mlflow_id, status=status, end_time=finished_ms)
    return export


def _log_prompts(client: Any, mlflow_id: str, run: RunResult, prompt_dirs: Sequence[Path]) -> list[str]:
    """Log each template the run used as an artifact and in the prompt registry; returns notes."""
    used = {prompt.hash: prompt for case in run.cases for prompt in case.prompts}
    if not used:
        return []
    templates = _templates_by_hash(prompt_dirs, set(used))
    notes = []
    missing = sorted(f"{p.name}@{p.version}" for h, p in used.items() if h not in templates)
    if missing:
        notes.append(
            "prompt templates not found in the prompt folders (only their hashes were logged): " + ", ".join(missing)
        )
    for digest, template in sorted(templates.items(), key=lambda item: item[1].ref):
        if template.path is not None:
            client.log_artifact(mlflow_id, str(template.path), "prompts")
        try:
            _register_prompt(client, template, digest)
        except Exception as exc:  # a store without a prompt registry (the file store) says so here
            notes.append(f"prompt {template.ref} not registered in MLflow's prompt registry: {type(exc).__name__}: {exc}")
    return notes


def _register_prompt(client: Any, template: Any, digest: str) -> None:
    """A new registry version for the template, unless one with the same content hash exists."""
    name = metric_key(template.name).replace(" ", "_").replace("/", "_").replace(":", "_")
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_prompt_versions(name)
    except MlflowException:
        found = []
    # A page object in some MLflow versions, a response holding ``prompt_versions`` in others.
    existing = list(getattr(found, "prompt_versions", found))
    if any(version.tags.get("llmops.hash") == digest for version in existing):
        return
    messages = [{"role": message.role, "content": message.source} for message in template.messages]
    client.register_prompt(
        name=name, template=messages, commit_message=f"pytest-llmops {template.ref}",
        tags={"llmops.hash": digest, "llmops.version": template.version},
    )


def _templates_by_hash(prompt_dirs: Sequence[Path], wanted: set[str]) -> dict[str, Any]:
    from pytest_llmops.prompts import PromptError
    from pytest_llmops.prompts._library import PromptLibrary

    found: dict[str, Any] = {}
    folders = [folder for folder in prompt_dirs if folder.is_dir()]
    if not folders:
        return found
    library = PromptLibrary(*folders)
    for name in library.names():
        try:
            template = library.get(name)
        except PromptError:
            continue  # a broken template the run did not use cannot be one it used
        if template.hash in wanted:
            found[template.hash] = template
    return found
