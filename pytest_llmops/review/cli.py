"""``llmops review``: review tasks out, labels back in, agreement reported.

    llmops review export .llmops/results.json --format labelstudio|argilla|jsonl [--show-judge] [-o FILE]
    llmops review import REVIEWED [--results .llmops/results.json] [--into .llmops/review/labels.jsonl]
                         [--calibration calibration.jsonl]
    llmops review report [--labels .llmops/review/labels.jsonl] [--json]

Exit codes: 0 done, 2 bad input. Standard library only at import.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_STORE = Path(".llmops/review/labels.jsonl")
DEFAULT_RESULTS = Path(".llmops/results.json")
_EXT = {"labelstudio": "json", "argilla": "json", "jsonl": "jsonl"}


def add_review_parser(commands: argparse._SubParsersAction) -> None:
    review = commands.add_parser("review", help="human review of judge verdicts: export tasks, import labels")
    actions = review.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write review tasks for the cases a run marked for review")
    export.add_argument("results", help="results file of a run with --llmops-review-sample or llm_eval(review=...)")
    export.add_argument("--format", choices=("labelstudio", "argilla", "jsonl"), default="jsonl")
    export.add_argument("--show-judge", action="store_true",
                        help="show the judge's verdict to reviewers (hidden by default, so it cannot anchor them)")
    export.add_argument("-o", "--output", default=None, help="default: .llmops/review/tasks.<format>.json(l)")
    export.set_defaults(handler=export_command)
    load = actions.add_parser("import", help="read reviewers' labels back into the label store")
    load.add_argument("file", help="the file Label Studio / Argilla exported, or JSONL {item_id, reviewer, label}")
    load.add_argument("--format", choices=("auto", "labelstudio", "argilla", "jsonl"), default="auto")
    load.add_argument("--results", default=str(DEFAULT_RESULTS),
                      help="the results file the tasks were exported from (gives each item its judge verdict)")
    load.add_argument("--into", default=str(DEFAULT_STORE), help=f"label store (default: {DEFAULT_STORE})")
    load.add_argument("--calibration", default=None,
                      help="also write the majority labels as the JSONL file `llmops calibrate` reads")
    load.add_argument("--json", action="store_true", help="print the agreement report as JSON")
    load.set_defaults(handler=import_command)
    report = actions.add_parser("report", help="agreement between reviewers, and of the judge with them")
    report.add_argument("--labels", default=str(DEFAULT_STORE))
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=report_command)


def _fail(message: str) -> int:
    print(f"llmops review: {message}", file=sys.stderr)
    return 2


def _tasks_of(results: Path) -> list[Any]:
    from pytest_llmops.results.models import read_results
    from pytest_llmops.review.tasks import review_tasks

    return review_tasks(read_results(results))


def export_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from pytest_llmops.review.formats import export_tasks

    try:
        tasks = _tasks_of(Path(args.results))
    except (OSError, ValueError, ValidationError) as exc:
        return _fail(f"cannot read {args.results}: {exc}")
    if not tasks:
        return _fail(f"{args.results}: no case is marked for review; run the suite with --llmops-review-sample=0.1 "
                     f"(or @pytest.mark.llm_eval(review=0.1)) and judge-backed checks")
    out = Path(args.output or f".llmops/review/tasks.{args.format}.{_EXT[args.format]}")
    written = export_tasks(tasks, out, args.format, show_judge=args.show_judge)
    shown = "shown" if args.show_judge else "hidden"
    print(f"wrote {len(tasks)} review tasks ({args.format}, judge verdict {shown}) to {', '.join(map(str, written))}")
    return 0


def import_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from pytest_llmops.review.formats import read_labels
    from pytest_llmops.review.labels import LabelError, calibration_lines, merge, read_store, write_store

    try:
        labels = read_labels(Path(args.file), args.format)
    except LabelError as exc:
        return _fail(str(exc))
    if not labels:
        return _fail(f"{args.file}: holds no labels (no submitted verdict); nothing imported")
    try:
        tasks = {task.item_id: task for task in _tasks_of(Path(args.results))}
    except (OSError, ValueError, ValidationError) as exc:
        return _fail(f"cannot read {args.results} (the results the tasks came from; pass --results): {exc}")
    unknown = sorted({label["item_id"] for label in labels} - set(tasks))
    if unknown:
        return _fail(f"{args.file}: {len(unknown)} item(s) not among the review tasks of {args.results} "
                     f"(e.g. {', '.join(unknown[:3])}); pass the results file they were exported from with --results")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for label in labels:
        task = tasks[label["item_id"]]
        label.update(at=label["at"] or now, nodeid=task.nodeid, score=task.score, item_sha256=task.item_sha256,
                     judged=task.judged, judge={**task.judge, "group": task.group()}, source=str(args.file))
    store = Path(args.into)
    try:
        old = read_store(store) if store.exists() else []
    except LabelError as exc:
        return _fail(str(exc))
    merged = merge(old, labels)
    write_store(store, merged)
    print(f"imported {len(labels)} labels from {args.file} into {store} ({len(merged)} in the store)")
    if args.calibration:
        lines = calibration_lines(merged)
        Path(args.calibration).write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                                          encoding="utf-8")
        print(f"wrote {len(lines)} majority labels to {args.calibration} (for `llmops calibrate`)")
    return _print_report(merged, args.json)


def report_command(args: argparse.Namespace) -> int:
    from pytest_llmops.review.labels import LabelError, read_store

    try:
        labels = read_store(Path(args.labels))
    except LabelError as exc:
        return _fail(str(exc))
    return _print_report(labels, args.json)


def agreement_report(labels: list[dict[str, Any]]) -> dict[str, Any]:
    """Inter-reviewer agreement, and judge-vs-human agreement per judge model and template."""
    from pytest_llmops.review.agreement import between_reviewers, judge_vs_human
    from pytest_llmops.review.labels import by_item, majority

    items = by_item(labels)
    votes = {item: {v["reviewer"]: v["label"] for v in majority(group)[1]} for item, group in items.items()}
    pairs, ties, unjudged = [], 0, 0
    for group in items.values():
        human, _ = majority(group)
        judge = group[0].get("judge") or {}
        if human is None:
            ties += 1
        elif judge.get("verdict") not in ("pass", "fail"):
            unjudged += 1
        else:
            pairs.append((judge.get("group", "?"), judge["verdict"], human))
    return {"n_labels": len(labels), "n_items": len(items), "reviewers": between_reviewers(votes),
            "judge_vs_human": judge_vs_human(pairs), "items_tied": ties, "items_judge_unmeasured": unjudged}


def _print_report(labels: list[dict[str, Any]], as_json: bool) -> int:
    report = agreement_report(labels)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    reviewers = report["reviewers"]
    kappa = "n/a" if reviewers["kappa"] is None else f"{reviewers['kappa']:.3f}"
    print(f"{report['n_labels']} labels on {report['n_items']} items")
    print(f"between reviewers: {reviewers['method']} = {kappa} over {reviewers['n_items']} items "
          f"({', '.join(reviewers['reviewers'])})" + (f"; {reviewers['reason']}" if reviewers.get("reason") else ""))
    for row in report["judge_vs_human"]:
        kappa = "n/a" if row["kappa"] is None else f"{row['kappa']:.3f}"
        low, high = row["interval"]
        print(f"judge vs human, {row['group']}: agreement {row['agreement']:.3f} "
              f"[{low:.3f}, {high:.3f}] ({row['confidence']:.0%} Wilson) over {row['n_items']} items, kappa {kappa}; "
              f"judge pass / human fail: {row['judge_pass_human_fail']}, judge fail / human pass: "
              f"{row['judge_fail_human_pass']}")
    if report["items_tied"]:
        print(f"{report['items_tied']} item(s) with tied reviewers are not compared with the judge")
    if report["items_judge_unmeasured"]:
        print(f"{report['items_judge_unmeasured']} item(s) the judge left unmeasured are not compared")
    return 0
