"""``llmops history``: the runs in the history file, a score's trend, the models and prompts evaluated.

    llmops history list [--branch main] [--since 30d] [--limit 20]
    llmops history show RUN_ID
    llmops history trend SCORE [--by model|prompt] [--since 30d]   (SCORE: a name, drift, or PREFIX.*)
    llmops history trend drift [--against first|previous|RUN] [--window N] [--check TEXT] [--method M]
    llmops history models
    llmops history import results.json [more.json ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_HISTORY = Path(".llmops/history.sqlite")


def add_history_parser(commands: argparse._SubParsersAction) -> None:
    from pytest_llmops.cli import parse_duration

    history = commands.add_parser("history", help="runs over time: list, show, trend, models, import")
    history.add_argument("--path", type=Path, default=DEFAULT_HISTORY, help=f"history file (default: {DEFAULT_HISTORY})")
    actions = history.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", help="the stored runs, newest first")
    listing.add_argument("--branch", help="only runs of this branch")
    listing.add_argument("--since", type=parse_duration, help="only runs younger than this (e.g. 30d)")
    listing.add_argument("--limit", type=int, default=20)
    show = actions.add_parser("show", help="one run: settings, counts, gates")
    show.add_argument("run_id", help="a run id (a unique prefix will do)")
    trend = actions.add_parser("trend", help="a score's mean per run, oldest first")
    trend.add_argument("score", help="a score name (rougeL, faithfulness), or a family: drift, robust.asr.*")
    trend.add_argument("--by", choices=["model", "prompt"], help="one line per model or prompt version")
    trend.add_argument("--since", type=parse_duration, help="only runs younger than this (e.g. 30d)")
    drift = trend.add_argument_group("trend drift", "drift recomputed from the embedding summaries the runs stored")
    drift.add_argument("--against", default="first", metavar="first|previous|RUN",
                       help="the reference: the first window, the previous one, or a run id (default: first)")
    drift.add_argument("--window", type=int, default=1, metavar="N", help="pool N consecutive runs per window (default 1)")
    drift.add_argument("--check", metavar="TEXT", help="only drift checks whose test id or score name contains TEXT")
    drift.add_argument("--method", help="re-test with this drift method (default: the one each check used)")
    drift.add_argument("--html", type=Path, metavar="PATH", help="also write the drift-over-time charts to this page")
    actions.add_parser("models", help="each model and prompt version evaluated, when, with which verdict")
    importing = actions.add_parser("import", help="add existing results files to the history")
    importing.add_argument("files", nargs="+", type=Path)
    importing.add_argument("--branch", help="the branch these runs evaluated (default: none recorded)")
    for sub in (listing, show, trend, importing):
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.set_defaults(handler=history_command)


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else "-"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def history_command(args: argparse.Namespace) -> int:
    from pytest_llmops.history.store import HistoryError, HistoryStore

    if args.action != "import" and not args.path.is_file():
        print(f"llmops: no history at {args.path} (runs are appended when they finish; or pass --path)", file=sys.stderr)
        return 2
    try:
        with HistoryStore(args.path) as store:
            return _ACTIONS[args.action](store, args)
    except HistoryError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2


def _list(store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    since = time.time() - args.since if args.since else None
    rows = store.runs(branch=args.branch, since=since, limit=args.limit)
    if args.json:
        print(json.dumps([row.__dict__ | {"verdict": row.verdict} for row in rows], indent=2))
        return 0
    print(f"{'run':<16}  {'finished (UTC)':<16}  {'branch':<12}  {'revision':<12}  {'model':<24}  verdict")
    for row in rows:
        print(
            f"{row.run_id:<16}  {_when(row.finished_at):<16}  {(row.git_branch or '-')[:12]:<12}  "
            f"{(row.git_revision or '-')[:12]:<12}  {(row.model or '-')[:24]:<24}  {row.verdict} "
            f"({', '.join(f'{n} {s}' for s, n in row.counts.items() if n)})"
        )
    return 0


def _show(store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    run = store.load(args.run_id)
    if args.json:
        print(run.model_dump_json(indent=2))
        return 0
    print(f"run {store.full_id(args.run_id)}: finished {_when(run.finished_at)}, exit {run.exit_status}, "
          f"revision {run.environment.git_revision or '-'}")
    print(f"  model {run.settings.get('model')}, judge {run.settings.get('judge')}")
    counts = run.summary.get("counts", {})
    print(f"  {len(run.cases)} cases: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for gate in run.gates:
        print(f"  gate {gate.expression}: {gate.verdict} ({_number(gate.value)})")
    return 0


def _trend(store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    since = time.time() - args.since if args.since else None
    if args.score == "drift" and args.by is None and store.drift_summaries(limit=1):
        return _drift_trend(store, args, since)
    drift_flags = [f"--{name}" for name, default in (("against", "first"), ("window", 1), ("check", None),
                                                     ("method", None), ("html", None)) if getattr(args, name) != default]
    if drift_flags:
        flags = ", ".join(drift_flags)
        if args.score != "drift" or args.by is not None:
            why = f"{flags}: only for `trend drift` (without --by)"
        else:
            why = (f"{flags}: no run in {store.path} kept an embedding summary of a drift check (runs stored before "
                   "this version, or assert_no_drift(..., keep_sample=0)), so there is no drift to recompute")
        print(f"llmops: {why}", file=sys.stderr)
        return 2
    points = store.trend(args.score, by=args.by, since=since)
    if args.json:
        print(json.dumps(points, indent=2))
        return 0
    if not points:
        print(f"no run in {store.path} has a score {args.score!r}")
        return 1
    if args.score == "drift":
        print("no run stored an embedding summary of its drift checks (older runs): showing the statistic each "
              "run computed against its own baseline")
    print(f"{args.score}: mean over the cases of each run, oldest first")
    for p in points:
        group = f"  {p['group']}" if p["group"] else ""
        print(
            f"  {_when(p['finished_at'])}  {p['run_id']}  {(p['git_revision'] or '-')[:10]:<10}{group}  "
            f"mean {_number(p['mean'])}  ({p['passed']}/{p['cases']} passed)"
        )
    return 0


def _drift_trend(store, args: argparse.Namespace, since: float | None) -> int:  # type: ignore[no-untyped-def]
    from pytest_llmops.history.drift_trend import drift_over_time
    from pytest_llmops.metrics._deps import MissingDependencyError

    try:
        checks = drift_over_time(store, against=args.against, window=args.window, check=args.check,
                                 method=args.method, since=since)
    except MissingDependencyError as exc:  # a history copied to a machine without the [drift] extra
        print(f"llmops: trend drift: {exc}", file=sys.stderr)
        return 2
    reference = {"first": "the first window", "previous": "the window before"}.get(args.against, f"run {args.against}")
    if args.html is not None:
        from pytest_llmops.redact import redact_text
        from pytest_llmops.reporting.html import render_drift_page
        from pytest_llmops.reporting.outputs import write_atomic

        try:
            write_atomic(args.html, redact_text(render_drift_page(checks, against=reference, source=str(store.path))))
        except OSError as exc:
            print(f"llmops: cannot write {args.html} (--html): {exc.strerror or exc}; choose a writable path",
                  file=sys.stderr)
            return 2
        print(f"drift over time: {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps({name: [p.to_dict() for p in points] for name, points in checks.items()}, indent=2))
        return 0
    if not checks:
        print(f"no drift check matching {args.check!r} in {store.path}")
        return 1
    span = f"windows of {args.window} runs" if args.window > 1 else "run by run"
    for name, points in checks.items():
        print(f"{name}: drift against {reference}, {span}, oldest first")
        print(f"  {'#':>3}  {'finished (UTC)':<16}  {'runs':<17}  {'revision':<10}  {'n':>5}  "
              f"{'statistic':<16}  {'p':>8}  {'drifted':<7}  centroid shift")
        for p in points:
            runs = p.run_ids[0][:8] + (f" +{len(p.run_ids) - 1}" if len(p.run_ids) > 1 else "")
            head = f"  {p.window:>3}  {_when(p.finished_at):<16}  {runs:<17}  {(p.git_revision or '-')[:10]:<10}  {p.n:>5}  "
            if p.is_reference:
                print(head + "reference")
            elif p.note:
                print(head + p.note)
            else:
                statistic = f"{p.statistic_name} {_number(p.statistic)}"
                print(head + f"{statistic:<16}  {_number(p.p_value):>8}  {'YES' if p.drifted else 'no':<7}  "
                      f"{_number(p.centroid_shift)}")
    return 0


def _models(store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    print("models (role, model, runtime): runs, first and last evaluated, last verdict")
    for m in store.models():
        runtime = m["runtime"] or {}
        build = " ".join(f"{k}={runtime[k]}" for k in ("engine", "llama_cpp_python", "weights_id") if k in runtime)
        print(f"  {m['role']:<6} {m['model']:<32} {build or '-'}: {m['runs']} runs, "
              f"{_when(m['first'])} .. {_when(m['last'])}, last {m['last_verdict']}")
    print("prompt templates (name@version, hash): runs, first and last evaluated")
    for p in store.prompt_versions():
        print(f"  {p['name']}@{p['version']} {p['hash'][:12]}: {p['runs']} runs, {_when(p['first'])} .. {_when(p['last'])}")
    return 0


def _import(store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from pytest_llmops.history.record import suite_of
    from pytest_llmops.results.models import read_results, redacted

    status = 0
    for path in args.files:
        try:
            run = redacted(read_results(path))
        except (OSError, ValueError, ValidationError) as exc:
            print(f"llmops: cannot import {path}: {exc}", file=sys.stderr)
            status = 2
            continue
        before = len(store.runs())
        run_id = store.append(run, branch=args.branch, suite=suite_of(run))
        added = len(store.runs()) > before
        print(f"{path}: {'added as' if added else 'already in the history as'} run {run_id}")
    return status


_ACTIONS = {"list": _list, "show": _show, "trend": _trend, "models": _models, "import": _import}
