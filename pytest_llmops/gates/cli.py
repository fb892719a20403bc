"""``llmops gate`` and ``llmops baseline``: re-gate and compare stored results without re-running.

    llmops gate .llmops/results.json --gate 'pass_rate.lower>=0.9' --gate 'latency.p95<=2s'
    llmops gate .llmops/results.json --compare main --tolerance 0.02
    llmops baseline save .llmops/results.json main
    llmops baseline list
    llmops gate scored.summary.json --gate 'pii.pass_rate.lower>=0.99' [--each-window]   (an `llmops score` summary)

Exit codes: 0 every gate passed (and no regression), 1 a gate failed or was
unmeasured, a regression was found, a case ended on an error of the suite or a
corpus score failed (as in the run itself), 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_RESULTS = ".llmops/results.json"
DEFAULT_BASELINES = Path(".llmops/baselines")


def add_gate_parsers(commands: argparse._SubParsersAction) -> None:
    gate = commands.add_parser("gate", help="evaluate release gates on a stored results file")
    gate.add_argument("file", nargs="?", default=DEFAULT_RESULTS, help=f"results file (default: {DEFAULT_RESULTS})")
    gate.add_argument("--gate", action="append", default=[], metavar="EXPR",
                      help="a gate such as 'pass_rate.lower>=0.9'; repeat for several (default: the run's own gates)")
    gate.add_argument("--confidence", type=float, default=0.95, help="confidence of Wilson intervals (default 0.95)")
    gate.add_argument("--compare", metavar="NAME", help="also compare with the stored baseline NAME")
    gate.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES, help="baseline folder")
    gate.add_argument("--tolerance", type=float, default=0.0, help="tolerated drop before a regression counts")
    gate.add_argument("--alpha", type=float, default=0.05, help="significance level of the regression tests")
    gate.add_argument("--each-window", action="store_true",
                      help="score summaries: decide every gate on each window of the summary too")
    gate.add_argument("--html", type=Path, help="write the HTML report of the re-gated run here")
    gate.add_argument("--markdown", type=Path, help="write the Markdown summary of the re-gated run here")
    gate.set_defaults(handler=gate_command)

    baseline = commands.add_parser("baseline", help="store a results file as a named baseline, or list them")
    baseline.add_argument("action", choices=["save", "list"])
    baseline.add_argument("file", nargs="?", default=DEFAULT_RESULTS)
    baseline.add_argument("name", nargs="?")
    baseline.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES, help="baseline folder")
    baseline.set_defaults(handler=baseline_command)


def _read(path: Path):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from pytest_llmops.results.models import read_results

    try:
        return read_results(path)
    except FileNotFoundError:
        print(f"llmops: no results file at {path} (run the tests first, or pass the file)", file=sys.stderr)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"llmops: cannot read {path}: {exc}", file=sys.stderr)
    return None


def gate_command(args: argparse.Namespace) -> int:
    from pytest_llmops.gates.evaluate import evaluate_gates
    from pytest_llmops.gates.parse import GateSyntaxError, parse_gates
    from pytest_llmops.gates.suites import from_results
    from pytest_llmops.results.baseline import BaselineError, compare_runs, load_baseline

    summary = _summary(Path(args.file))
    if summary is not None:
        return _gate_summary(args, summary)
    run = _read(Path(args.file))
    if run is None:
        return 2
    expressions = args.gate or [gate.expression for gate in run.gates]
    if not expressions and not args.compare:
        print("llmops: no gates given and none stored in the file; pass --gate EXPR (e.g. --gate 'pass_rate>=0.95')",
              file=sys.stderr)
        return 2
    try:
        if args.gate:
            gates = parse_gates(expressions, source="--gate")
        else:
            gates = from_results(list(run.gates), source=f"gates stored in {args.file}")
    except GateSyntaxError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    updates: dict = {"gates": evaluate_gates(gates, run.cases, confidence=args.confidence)}
    if args.compare:
        try:
            baseline = load_baseline(args.baselines, args.compare)
        except BaselineError as exc:
            print(f"llmops: {exc}", file=sys.stderr)
            return 2
        updates["comparison"] = compare_runs(run, baseline, name=args.compare, tolerance=args.tolerance, alpha=args.alpha)
    run = run.model_copy(update=updates)
    for gate in run.gates:
        value = "unmeasured" if gate.value is None else f"{gate.value:.4g}{(' ' + gate.unit) if gate.unit else ''}"
        print(f"{gate.verdict.upper():<10} {gate.expression}  = {value}  ({gate.detail})")
    if run.comparison is not None:
        for metric in run.comparison.metrics:
            delta = "" if metric.delta is None else f" delta {metric.delta:+.4g}, p={metric.p_value:.3g}"
            print(f"{metric.verdict.upper():<22} {metric.metric}:{delta} (n={metric.n_pairs}; {metric.test})")
        for warning in run.comparison.warnings:
            print(f"WARNING: {warning}")
    if args.html or args.markdown:
        from pytest_llmops.reporting.outputs import write_outputs

        for path in write_outputs(run, html_path=args.html, markdown_path=args.markdown, step_summary=False):
            print(f"wrote {path}")
    refused = any(g.verdict != "pass" for g in run.gates) or (run.comparison is not None and run.comparison.regressed)
    from pytest_llmops.results.summary import suite_errors_problem

    errors = suite_errors_problem(run.cases)
    if errors:
        print(f"REFUSED    {errors}")  # no gate excuses an error of the suite
    # As in the run itself: a failing or unmeasured corpus score fails it, whatever the gates say.
    bad_groups = [score for score in run.group_scores if score.verdict != "pass"]
    for score in bad_groups:
        value = "unmeasured" if score.value is None else f"{score.value:.4g}"
        print(f"REFUSED    corpus score {score.name} = {value}: {score.verdict} ({score.reason})")
    return 1 if refused or errors or bad_groups else 0


def _summary(path: Path) -> dict | None:
    """The file's JSON when it is an ``llmops score`` summary; None for anything else (read as results)."""
    import json

    from pytest_llmops.scoring.gates import is_summary

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # _read says what is wrong with it
    return data if is_summary(data) else None


def _gate_summary(args: argparse.Namespace, summary: dict) -> int:
    """Gates on a score summary: the checks' pass rates (with Wilson bounds), means and counts."""
    from pytest_llmops.gates.parse import GateSyntaxError
    from pytest_llmops.scoring.gates import evaluate_summary_gates, parse_summary_gates, print_gates

    for flag, given in (("--compare", args.compare), ("--html", args.html), ("--markdown", args.markdown)):
        if given:
            print(f"llmops: {flag} works on results files; {args.file} is a score summary", file=sys.stderr)
            return 2
    expressions = args.gate or list(summary.get("gates") or [])
    if not expressions:
        print(f"llmops: no gates given and none stored in {args.file}; pass --gate EXPR "
              f"(e.g. --gate 'pii.pass_rate.lower>=0.99')", file=sys.stderr)
        return 2
    if args.each_window and not (summary.get("windows") or {}).get("windows"):
        print(f"llmops: --each-window: {args.file} has no windows; score with --window (e.g. --window 1h)",
              file=sys.stderr)
        return 2
    try:
        gates = parse_summary_gates(expressions, source="--gate" if args.gate else f"gates stored in {args.file}")
    except GateSyntaxError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    decided = evaluate_summary_gates(gates, summary, confidence=args.confidence, each_window=args.each_window)
    print_gates(decided)
    return 1 if any(gate.verdict != "pass" for gate in decided) else 0


def baseline_command(args: argparse.Namespace) -> int:
    from pytest_llmops.results.baseline import BaselineError, save_baseline

    if args.action == "list":
        found = sorted(args.baselines.glob("*.json")) if args.baselines.is_dir() else []
        for path in found:
            print(path.stem)
        if not found:
            print(f"no baselines in {args.baselines}")
        return 0
    if not args.name:
        print("llmops: baseline save needs a NAME, e.g. llmops baseline save .llmops/results.json main", file=sys.stderr)
        return 2
    run = _read(Path(args.file))
    if run is None:
        return 2
    try:
        path = save_baseline(run, args.baselines, args.name)
    except BaselineError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    print(f"saved {args.file} as baseline {args.name!r} ({path})")
    return 0
