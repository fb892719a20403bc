"""``llmops export TARGET``: send a run's results to another tool.

    llmops export mlflow .llmops/results.json [--tracking-uri URI] [--experiment NAME]
    llmops export preferences .llmops/results.json --format trl|openai-dpo|kto --out FILE.jsonl [--labels STORE]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_export_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="send a run's results to another tool (mlflow, preferences)")
    targets = export.add_subparsers(dest="target", required=True)
    mlflow = targets.add_parser(
        "mlflow", help="log a results file as one MLflow run: params, metrics, tags, artifacts, prompts"
    )
    mlflow.add_argument("results", type=Path, help="a results file (e.g. .llmops/results.json)")
    mlflow.add_argument(
        "--tracking-uri", default=None,
        help="MLflow tracking URI: http://host:5000, sqlite:///mlflow.db, ... (default: $MLFLOW_TRACKING_URI)",
    )
    mlflow.add_argument("--experiment", default="pytest-llmops", help="MLflow experiment (default: pytest-llmops)")
    mlflow.add_argument("--branch", help="the git branch the run evaluated (default: from CI variables or git)")
    mlflow.add_argument(
        "--report", type=Path, action="append", default=[],
        help="a report file to attach (HTML, Markdown); repeat for several (default: the run's own, if present)",
    )
    mlflow.add_argument(
        "--prompts", type=Path, action="append", default=[],
        help="folders of the prompt templates the run used (default: the run's llmops_prompts setting)",
    )
    mlflow.set_defaults(handler=export_mlflow_command)
    prefs = targets.add_parser(
        "preferences", help="write preference pairs (DPO/KTO training data) from judge scores and review labels"
    )
    prefs.add_argument("results", type=Path, help="a results file (e.g. .llmops/results.json)")
    prefs.add_argument(
        "--format", required=True, choices=["trl", "openai-dpo", "kto"],
        help="trl: {prompt, chosen, rejected}; openai-dpo: {input, preferred_output, non_preferred_output}; "
        "kto: {prompt, completion, label}",
    )
    prefs.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    prefs.add_argument(
        "--labels", type=Path, default=None,
        help="a review label store (llmops review import): also pair answers reviewers passed with ones they failed",
    )
    prefs.set_defaults(handler=export_preferences_command)


def resolve_tracking_uri(given: str | None) -> str | None:
    return given or os.environ.get("MLFLOW_TRACKING_URI") or None


def export_mlflow_command(args: argparse.Namespace) -> int:
    from pytest_llmops.exports.mlflow import MLflowExportError, export_run
    from pytest_llmops.history.record import current_branch
    from pytest_llmops.history.store import run_id_of
    from pytest_llmops.results.models import read_results

    uri = resolve_tracking_uri(args.tracking_uri)
    if uri is None:
        print("llmops: export mlflow needs --tracking-uri (or MLFLOW_TRACKING_URI set)", file=sys.stderr)
        return 2
    try:
        run = read_results(args.results)
    except (OSError, ValueError) as exc:
        print(f"llmops: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    reports = args.report or _own_reports(run.settings)
    prompt_dirs = args.prompts or [Path(p) for p in run.settings.get("prompts") or []]
    try:
        done = export_run(
            run, tracking_uri=uri, experiment=args.experiment, run_id=run_id_of(run),
            branch=args.branch or current_branch(Path.cwd()), results_file=args.results,
            reports=reports, prompt_dirs=prompt_dirs,
        )
    except MLflowExportError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    verb = "logged as" if done.created else "already exported as"
    print(f"{args.results}: {verb} MLflow run {done.mlflow_run_id} (experiment {done.experiment_id}) at {uri}")
    for note in done.notes:
        print(f"  note: {note}")
    return 0


def export_preferences_command(args: argparse.Namespace) -> int:
    from pytest_llmops.exports.preferences import PreferenceExportError, export_preferences
    from pytest_llmops.results.models import read_results
    from pytest_llmops.review.labels import LabelError, read_store

    try:
        run = read_results(args.results)
    except (OSError, ValueError) as exc:
        print(f"llmops: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    try:
        labels = read_store(args.labels) if args.labels is not None else []
        summary = export_preferences(run, args.format, args.out, labels)
    except (PreferenceExportError, LabelError) as exc:
        print(f"llmops: {args.results}: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary.written} preference pair(s) ({args.format}) to {args.out}: {summary.pairwise.kept} of "
        f"{summary.pairwise.seen} pairwise score(s), {summary.repeats.kept} of {summary.repeats.seen} repeated "
        f"prompt(s), {summary.reviews.kept} of {summary.reviews.seen} reviewed prompt(s)"
    )
    for note in summary.notes():
        print(f"  note: {note}")
    return 0


def _own_reports(settings: dict) -> list[Path]:  # type: ignore[type-arg]
    """The HTML and Markdown reports the run wrote, where its settings name them."""
    return [Path(settings[key]) for key in ("html", "markdown") if settings.get(key)]
