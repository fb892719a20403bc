"""The ``llmops`` command: what is not a test run (cache maintenance, reports, drift).

    llmops cache stats [--path .llmops/cache.sqlite]
    llmops cache prune --older-than 30d
    llmops cache clear
    llmops results show .llmops/results.json
    llmops results merge shard-*.json -o results.json
    llmops gate .llmops/results.json --gate 'pass_rate.lower>=0.9'
    llmops baseline save .llmops/results.json main
    llmops redteam generate --task task.txt --n 50 --seed 1 --out cases.jsonl
    llmops matrix show .llmops/results.json
    llmops matrix best .llmops/results.json --write best.toml
    llmops review export .llmops/results.json --format labelstudio
    llmops judge audit --template pairwise --judge openai/gpt-4o-mini --out audit.md

Exit codes: 0 success, 1 a check failed, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CACHE = Path(".llmops/cache.sqlite")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '12h', '30d' -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use e.g. 90s, 15m, 12h or 30d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _cache_command(args: argparse.Namespace) -> int:
    from pytest_llmops.models.cache import CacheError, CallCache

    path = Path(args.path)
    if args.action != "clear" and not path.exists():
        print(f"llmops: no cache at {path} (pass --path, or run the tests once to create it)", file=sys.stderr)
        return 2
    try:
        with CallCache(path) as cache:
            if args.action == "stats":
                print(json.dumps(cache.stats(), indent=2, sort_keys=True, default=str))
            elif args.action == "clear":
                print(f"removed {cache.clear()} entries from {path}")
            elif args.action == "prune":
                print(f"removed {cache.prune(older_than_s=args.older_than)} entries older than {args.older_than:g} s")
            elif args.action == "vacuum":
                cache.vacuum()
                print(f"vacuumed {path}")
    except CacheError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    return 0


def _results_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    if args.action == "merge":
        return _merge_command(args)
    if len(args.file) > 1:
        print("llmops: results show takes one file", file=sys.stderr)
        return 2
    args.file = args.file[0] if args.file else ".llmops/results.json"

    from pytest_llmops.results.models import read_results

    try:
        run = read_results(Path(args.file))
    except (OSError, ValueError, ValidationError) as exc:
        print(f"llmops: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n} {state}" for state, n in run.summary.get("counts", {}).items() if n)
    print(f"{args.file}: {len(run.cases)} cases ({counts}); model {run.settings.get('model')}")
    for case in run.cases:
        if case.state != "passed":
            print(f"  {case.state.upper():<10} {case.nodeid} - {case.reason.splitlines()[0] if case.reason else ''}")
    return 0


def _merge_command(args: argparse.Namespace) -> int:
    """``llmops results merge shard-*.json -o results.json``: one run from every shard, gated by ``llmops gate``."""
    from pytest_llmops.results.merge import MergeError, merge_shards
    from pytest_llmops.results.models import write_results

    if args.output is None:
        print("llmops: results merge needs -o FILE, e.g. llmops results merge shard-*.json -o results.json",
              file=sys.stderr)
        return 2
    try:
        run = merge_shards([Path(p) for p in args.file])
    except MergeError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    write_results(run, args.output)
    counts = ", ".join(f"{n} {state}" for state, n in run.summary.get("counts", {}).items() if n)
    print(f"merged {len(args.file)} shards into {args.output}: {len(run.cases)} cases ({counts})")
    for score in run.group_scores:
        value = "unmeasured" if score.value is None else f"{score.value:.4g}"
        print(f"group score: {score.name} = {value} ({score.verdict})")
    if run.gates:
        print(f"{len(run.gates)} deferred gate(s) stored; decide them with: llmops gate {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="pytest-llmops maintenance and reports")
    commands = parser.add_subparsers(dest="command", required=True)

    cache = commands.add_parser("cache", help="inspect or trim the provider-call cache")
    cache.add_argument("action", choices=["stats", "clear", "prune", "vacuum"])
    cache.add_argument("--path", default=str(DEFAULT_CACHE), help=f"cache file (default: {DEFAULT_CACHE})")
    cache.add_argument("--older-than", type=parse_duration, default=None, help="with prune: e.g. 30d, 12h")
    cache.set_defaults(handler=_cache_command)

    results = commands.add_parser("results", help="show a results file, or merge the files of --llmops-shard runs")
    results.add_argument("action", choices=["show", "merge"])
    results.add_argument("file", nargs="*", help="show: one results file (default .llmops/results.json); "
                         "merge: every shard's results file")
    results.add_argument("-o", "--output", type=Path, help="merge: where to write the merged results")
    results.set_defaults(handler=_results_command)

    _add_optional_commands(commands)
    return parser


def _add_optional_commands(commands: argparse._SubParsersAction) -> None:
    """Commands whose code lives with their feature."""
    from pytest_llmops.gates.cli import add_gate_parsers

    add_gate_parsers(commands)
    from pytest_llmops.judges.cli import add_calibrate_parser, add_judge_parser

    add_calibrate_parser(commands)
    add_judge_parser(commands)
    from pytest_llmops.history.cli import add_history_parser

    add_history_parser(commands)
    from pytest_llmops.exports.cli import add_export_parser

    add_export_parser(commands)
    from pytest_llmops.scoring.cli import add_score_parser

    add_score_parser(commands)
    from pytest_llmops.robust.cli import add_redteam_parser

    add_redteam_parser(commands)
    from pytest_llmops.matrix.cli import add_matrix_parser

    add_matrix_parser(commands)
    from pytest_llmops.review.cli import add_review_parser

    add_review_parser(commands)
    try:
        from pytest_llmops.drift.cli import add_drift_parser
    except ImportError:
        return
    add_drift_parser(commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "cache" and args.action == "prune" and args.older_than is None:
        parser.error("cache prune needs --older-than (e.g. --older-than 30d)")
    return int(args.handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
