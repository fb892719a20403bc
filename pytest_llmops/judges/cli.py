"""``llmops calibrate`` and ``llmops judge audit``: measure a judge against human labels.

    llmops calibrate labelled.jsonl --judge openai/gpt-4o-mini --metric faithfulness
    llmops calibrate labelled.jsonl --judge openai/x --api-base http://127.0.0.1:8000/v1 \\
        --metric rubric --criteria "Answers the question correctly" --min-kappa 0.6
    llmops judge audit --template pairwise --judge openai/gpt-4o-mini --out audit.md

Exit codes: 0 calibrated (and at least --min-kappa when given) / audited
(and no flip rate surely above --max-flip-rate), 1 below the bar, 2 bad
input. Standard library only at import (the ``llmops`` command builds its
parser from this module).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METRIC_CHOICES = ("faithfulness", "rubric", "answer_relevancy")


def add_calibrate_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("calibrate", help="measure a judge's agreement with human labels (JSONL)")
    parser.add_argument("data", help="JSONL file: one {input, output, context, label} object a line")
    parser.add_argument(
        "--judge",
        required=True,
        help="judge model (litellm name, e.g. openai/gpt-4o-mini)",
    )
    parser.add_argument("--api-base", default=None, help="base URL of the judge's API")
    parser.add_argument("--metric", choices=METRIC_CHOICES, default="faithfulness")
    parser.add_argument(
        "--criteria",
        default=None,
        help="rubric criteria (required with --metric rubric)",
    )
    parser.add_argument("--threshold", type=float, default=None, help="the metric's pass threshold")
    parser.add_argument("--template", default=None, help="a replacement judge template file (TOML)")
    parser.add_argument(
        "--repeats",
        type=int,
        choices=(1, 2),
        default=2,
        help="2: ask each item twice (default)",
    )
    parser.add_argument(
        "--min-kappa",
        type=float,
        default=None,
        help="exit 1 when Cohen's kappa is below this",
    )
    _add_call_options(parser)
    parser.add_argument(
        "--state-dir",
        default=".llmops",
        help="where calibration/ and the call cache live",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the call cache")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=calibrate_command)


def _add_call_options(parser: argparse.ArgumentParser) -> None:
    """How many judge calls go out at once and how long each may take (calibrate and audit)."""
    parser.add_argument("--concurrency", type=_positive_count, default=16, help="judge calls in flight at most (default 16)")
    parser.add_argument("--deadline", type=_seconds, default=120.0,
                        help="seconds a judge call may take, waiting for a slot included (default 120; raise it "
                        "for a local model, which answers one call at a time)")


def _judge_client(model: str, api_base: str | None, state_dir: Path, no_cache: bool, command: str,
                  concurrency: int = 16, deadline_s: float = 120.0) -> Any:
    """The judge as the project's client (temperature 0), with the call cache unless ``no_cache``.

    ``deadline_s`` bounds each call, the wait for a concurrency slot included.
    """
    from pytest_llmops.models.cache import CallCache, RecordMode
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
    from pytest_llmops.models.retry import RetryPolicy

    cache = None if no_cache else CallCache(state_dir / "cache.sqlite")
    runtime = ModelRuntime(cache=cache, record_mode=RecordMode.parse("new" if cache else "off", source=command),
                           concurrency=concurrency)
    config = ModelConfig(model=model, role="judge", api_base=api_base, params={"temperature": 0.0},
                         retry=RetryPolicy(deadline_s=deadline_s))
    return LLMClient(config, runtime)


def calibrate_command(args: argparse.Namespace) -> int:
    from pytest_llmops.judges.calibration import CalibrationError, calibrate
    from pytest_llmops.models.cache import CacheError
    from pytest_llmops.prompts import PromptError

    state_dir = Path(args.state_dir)
    try:
        judge = _judge_client(args.judge, args.api_base, state_dir, args.no_cache, "llmops calibrate",
                              args.concurrency, args.deadline)
    except (CacheError, ValueError) as error:
        print(f"llmops calibrate: {error}", file=sys.stderr)
        return 2
    runtime = judge.runtime
    try:
        report = runtime.run(
            calibrate(
                judge,
                args.metric,
                args.data,
                criteria=args.criteria,
                threshold=args.threshold,
                template=args.template,
                repeats=args.repeats,
                state_dir=state_dir,
            )
        )
    except (CalibrationError, PromptError) as error:
        print(f"llmops calibrate: {error}", file=sys.stderr)
        return 2
    finally:
        runtime.close()
    print(json.dumps(report.to_dict(), indent=2, sort_keys=True) if args.json else report.summary())
    print(f"saved to {report.path}", file=sys.stderr)
    if args.min_kappa is not None and (report.kappa is None or report.kappa < args.min_kappa):
        print(
            f"llmops calibrate: Cohen's kappa {report.kappa} is below --min-kappa {args.min_kappa}",
            file=sys.stderr,
        )
        return 1
    return 0


def _number(text: str, kind: type, what: str) -> Any:
    """``text`` read as ``kind`` (int or float) for an option, or argparse's error naming ``what`` it should be."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _fraction(text: str) -> float:
    value = _number(text, float, "a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _confidence(text: str) -> float:
    value = _fraction(text)
    if value in (0.0, 1.0):
        raise argparse.ArgumentTypeError(f"{text}: a confidence is strictly between 0 and 1, e.g. 0.95")
    return value


def _count(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is below 0")
    return value


def _positive_count(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1")
    return value


def _seconds(text: str) -> float:
    value = _number(text, float, "a number of seconds")
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: seconds above 0, e.g. 120")
    return value


def add_judge_parser(commands: argparse._SubParsersAction) -> None:
    """``llmops judge audit``: a judge template's biases over a labelled set."""
    from pytest_llmops.judges.audit.labels import TEMPLATES

    judge = commands.add_parser("judge", help="audit a judge template for biases (llmops judge audit)")
    actions = judge.add_subparsers(dest="action", required=True)
    audit = actions.add_parser(
        "audit",
        help="run a judge template over a labelled set with perturbations that should not change its verdict",
    )
    audit.add_argument("--template", required=True, help=f"the judge template: {', '.join(TEMPLATES)}")
    audit.add_argument("--labels", default=None,
                       help="labelled JSONL file (default: the set shipped for the template)")
    audit.add_argument("--judge", required=True, help="judge model (litellm name, e.g. openai/gpt-4o-mini)")
    audit.add_argument("--api-base", default=None, help="base URL of the judge's API")
    audit.add_argument("--template-file", default=None, help="a replacement judge template file (TOML)")
    audit.add_argument("--criteria", default=None, help="rubric / pairwise criteria (a row's own criteria wins)")
    audit.add_argument("--threshold", type=float, default=None, help="the metric's pass threshold (rubric, faithfulness)")
    audit.add_argument("--samples", type=_count, default=3,
                       help="extra answers per item at --temperature for the repeated-sampling flip rate (default 3; 0: none)")
    audit.add_argument("--temperature", type=float, default=0.7, help="temperature of the repeated samples (default 0.7)")
    audit.add_argument("--confidence", type=_confidence, default=0.95, help="interval confidence (default 0.95)")
    audit.add_argument("--max-flip-rate", type=_fraction, default=None,
                       help="exit 1 when a flip rate's lower bound is above this (the judge is surely biased)")
    audit.add_argument("--out", default=None, help="also write the report: report.json or report.md")
    _add_call_options(audit)
    audit.add_argument("--state-dir", default=".llmops", help="where the call cache lives")
    audit.add_argument("--no-cache", action="store_true", help="do not read or write the call cache")
    audit.set_defaults(handler=audit_command)


def _audit_inputs(args: argparse.Namespace) -> tuple[list[Any], Path]:
    """The labelled items and their file; ``AuditInputError`` names what is wrong and how to fix it."""
    from pytest_llmops.judges.audit.labels import AuditInputError, check_template, load_audit_items, shipped_labels

    check_template(args.template)
    if args.out is not None and Path(args.out).suffix not in (".json", ".md"):
        raise AuditInputError(f"--out {args.out}: write the report to a .json or .md file")
    if not 0.0 < args.temperature <= 2.0 and args.samples:
        raise AuditInputError(f"--temperature {args.temperature}: repeated samples need a temperature above 0 "
                              "(at most 2), or --samples 0")
    if args.threshold is not None and args.template == "pairwise":
        raise AuditInputError("--threshold does not apply to a pairwise audit (its verdict is the winner)")
    if args.template_file is not None and not Path(args.template_file).is_file():
        raise AuditInputError(f"--template-file {args.template_file}: no such file")
    path = Path(args.labels) if args.labels is not None else shipped_labels(args.template)
    items = load_audit_items(path, args.template)
    if args.template == "rubric" and args.labels is not None and args.criteria is None:
        lacking = [item.line for item in items if item.criteria is None]
        if lacking:
            raise AuditInputError(f"{path}:{lacking[0]}: no criteria for the rubric judge; add a \"criteria\" "
                                  "field to each row or pass --criteria '...'")
    return items, path


def audit_command(args: argparse.Namespace) -> int:
    from pytest_llmops.judges.audit.labels import AuditInputError
    from pytest_llmops.judges.audit.runner import run_audit
    from pytest_llmops.models.cache import CacheError
    from pytest_llmops.prompts import PromptError

    try:
        items, path = _audit_inputs(args)
        judge = _judge_client(args.judge, args.api_base, Path(args.state_dir), args.no_cache, "llmops judge audit",
                              args.concurrency, args.deadline)
    except (AuditInputError, CacheError, PromptError, ValueError) as error:
        print(f"llmops judge audit: {error}", file=sys.stderr)
        return 2
    try:
        report = judge.runtime.run(
            run_audit(judge, args.template, items, samples=args.samples, temperature=args.temperature,
                      criteria=args.criteria, threshold=args.threshold, template_file=args.template_file,
                      confidence=args.confidence, labels=str(path))
        )
    except (PromptError, ValueError) as error:  # a bad template file or threshold, found before any call
        print(f"llmops judge audit: {error}", file=sys.stderr)
        return 2
    finally:
        judge.runtime.close()
    print(report.summary())
    if args.out is not None:
        print(f"report written to {report.write(args.out)}", file=sys.stderr)
    if args.max_flip_rate is not None:
        biased = [b.name for b in report.biases
                  if b.flips is not None and b.flips.low is not None and b.flips.low > args.max_flip_rate]
        if biased:
            print(f"llmops judge audit: flip rate surely above --max-flip-rate {args.max_flip_rate}: "
                  f"{', '.join(biased)}", file=sys.stderr)
            return 1
    return 0
