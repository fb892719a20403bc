"""``llmops calibrate``: measure a judge against human labels and store the result.

    llmops calibrate labelled.jsonl --judge openai/gpt-4o-mini --metric faithfulness
    llmops calibrate labelled.jsonl --judge openai/x --api-base http://127.0.0.1:8000/v1 \\
        --metric rubric --criteria "Answers the question correctly" --min-kappa 0.6

Exit codes: 0 calibrated (and at least --min-kappa when given), 1 below
--min-kappa, 2 bad input. Standard library only at import (the ``llmops``
command builds its parser from this module).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    parser.add_argument(
        "--state-dir",
        default=".llmops",
        help="where calibration/ and the call cache live",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the call cache")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=calibrate_command)


def calibrate_command(args: argparse.Namespace) -> int:
    from pytest_llmops.judges.calibration import CalibrationError, calibrate
    from pytest_llmops.models.cache import CacheError, CallCache, RecordMode
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
    from pytest_llmops.prompts import PromptError

    state_dir = Path(args.state_dir)
    try:
        cache = None if args.no_cache else CallCache(state_dir / "cache.sqlite")
    except CacheError as error:
        print(f"llmops calibrate: {error}", file=sys.stderr)
        return 2
    runtime = ModelRuntime(cache=cache, record_mode=RecordMode.parse("new", source="llmops calibrate"))
    judge = LLMClient(
        ModelConfig(
            model=args.judge,
            role="judge",
            api_base=args.api_base,
            params={"temperature": 0.0},
        ),
        runtime,
    )
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
