"""``llmops score``: score a JSONL log of answers with the offline checks, locally or on Ray.

    llmops score logs.jsonl --checks checks.toml --out scored.jsonl [--engine local|ray] [--workers 2]
                 [--sample 0.1] [--time-field ts --since 2026-11-01 --until 2026-12-01] [--resume]
                 [--window 1h|1d|N] [--gate 'pii.pass_rate.lower>=0.99']

Exit codes: 0 scored (and every gate passed), 1 a gate failed or was unmeasured, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any


def add_score_parser(commands: argparse._SubParsersAction) -> None:
    score = commands.add_parser("score", help="score a JSONL log of answers with offline checks (local or Ray)")
    score.add_argument("logs", type=Path, help="JSONL file, one record (an object) a line")
    score.add_argument("--checks", type=Path, required=True, help="TOML file of [[check]] tables")
    score.add_argument("--out", type=Path, required=True, help="scored records: JSONL, or Parquet for a .parquet name")
    score.add_argument("--summary", type=Path, help="summary JSON (default: OUT with .summary.json)")
    score.add_argument("--engine", choices=("local", "ray"), default="local")
    score.add_argument("--workers", type=int, default=1, help="processes (local) or Ray actors (ray); default 1")
    score.add_argument("--address", help="Ray cluster address (default: start a local one)")
    score.add_argument("--id-field", default="id", help="record field that identifies it (default: id; else line N)")
    score.add_argument("--sample", type=float, help="score this share of the records (0 < RATE <= 1), by id hash")
    score.add_argument("--seed", default="0", help="seed of the sample")
    score.add_argument("--time-field", help="record field with the record's time (epoch seconds or ISO 8601)")
    score.add_argument("--since", help="only records at or after this time (ISO 8601 or epoch seconds)")
    score.add_argument("--until", help="only records before this time")
    score.add_argument("--resume", action="store_true", help="keep OUT and score only the records not in it")
    score.add_argument("--window", help="also sum up per window in the summary: a span by --time-field "
                       "(90m, 1h, 1d, 2w; aligned on UTC) or N for N consecutive records")
    score.add_argument("--gate", action="append", default=[], metavar="EXPR",
                       help="a gate on the summary, e.g. 'pii.pass_rate.lower>=0.99' (repeatable; "
                       "added to the checks file's gates = [...])")
    score.add_argument("--each-window", action="store_true", help="decide the gates on every window too")
    score.add_argument("--concurrency", type=int, default=16,
                       help="judge checks: most calls in flight per provider, per worker (default 16)")
    score.add_argument("--cache", default=".llmops/cache.sqlite",
                       help="judge checks: SQLite call cache (default .llmops/cache.sqlite; 'off' for none)")
    score.set_defaults(handler=score_command)


class _Refused(ValueError):
    pass


def _moment(value: Any, what: str) -> float:
    """Epoch seconds from Unix seconds (a number, or its text) or ISO 8601 (no zone = UTC)."""
    from pytest_llmops.drift.logs import parse_time

    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    try:
        return parse_time(value).timestamp()
    except ValueError as exc:
        raise _Refused(f"{what}: {exc}") from None


def read_log(path: Path, id_field: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of a JSONL file (each given an id: its own, else ``line:N``) and the problems found."""
    records, problems = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise _Refused(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg}); line skipped")
            continue
        if not isinstance(record, dict):
            problems.append(f"{path}:{number}: not a JSON object; line skipped")
            continue
        if record.get(id_field) is None:
            record[id_field] = f"line:{number}"
        records.append(record)
    return records, problems


def select(records: list[dict[str, Any]], args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records in the time window and the sample; counts of what was left out, and why."""
    left_out = {"outside the time window": 0, "no time": 0, "not sampled": 0}
    since = _moment(args.since, "--since") if args.since else None
    until = _moment(args.until, "--until") if args.until else None
    if (since is not None or until is not None) and not args.time_field:
        raise _Refused("--since/--until need --time-field (the record field holding its time)")
    if args.sample is not None and not 0 < args.sample <= 1:
        raise _Refused(f"--sample: expected a share in (0, 1], got {args.sample}")
    kept = []
    for record in records:
        if args.time_field and (since is not None or until is not None):
            raw = record.get(args.time_field)
            try:
                moment = _moment(raw, "time") if raw is not None else None
            except _Refused:
                moment = None
            if moment is None:
                left_out["no time"] += 1
                continue
            if (since is not None and moment < since) or (until is not None and moment >= until):
                left_out["outside the time window"] += 1
                continue
        if args.sample is not None and args.sample < 1:
            digest = hashlib.sha256(f"{args.seed}|{record[args.id_field]}".encode()).digest()
            if int.from_bytes(digest[:8], "big") / 2**64 >= args.sample:
                left_out["not sampled"] += 1
                continue
        kept.append(record)
    return kept, left_out


def score_command(args: argparse.Namespace) -> int:
    from pytest_llmops.scoring.checks import ChecksError, load_checks
    from pytest_llmops.scoring.engines import RayUnavailable, run_local, run_ray
    from pytest_llmops.scoring.records import summarize

    summary_path = args.summary or args.out.with_suffix(".summary.json")
    try:
        if args.out.suffix == ".parquet":
            _need_pyarrow()
        checks = load_checks(args.checks)
        gates = _gates(args, checks)
        window = _window(args)
        records, problems = read_log(args.logs, args.id_field)
        chosen, left_out = select(records, args)
        done: dict[str, dict[str, Any]] = {}
        if args.resume and args.out.is_file():
            done = {str(item["id"]): item for item in _read_scored(args.out)}
        elif args.out.exists() and not args.resume:
            raise _Refused(f"{args.out} exists: pass --resume to add to it, or choose another --out")
        todo = [record for record in chosen if str(record[args.id_field]) not in done]
        started = time.perf_counter()
        options = {"id_field": args.id_field, "concurrency": max(1, args.concurrency),
                   "cache_path": None if args.cache == "off" else Path(args.cache).resolve()}
        if args.engine == "ray":
            scored = run_ray(todo, checks, address=args.address, workers=max(args.workers, 1), **options)
        else:
            scored = run_local(todo, checks, workers=args.workers, **options)
        seconds = time.perf_counter() - started
        if args.time_field:
            for record, item in zip(todo, scored):
                raw = record.get(args.time_field)
                try:  # kept with the scores, so that windows and --resume need not read the log again
                    item["time"] = _moment(raw, "time") if raw is not None else None
                except _Refused:
                    item["time"] = None
    except (ChecksError, _Refused, RayUnavailable) as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".parquet":
        write_parquet(args.out, [*done.values(), *scored])
    else:
        _append_jsonl(args.out, scored)
    every_item = [*done.values(), *scored]
    summary = summarize(every_item)
    summary |= {"engine": args.engine, "scored_now": len(scored), "already_scored": len(done),
                "left_out": left_out, "problems": problems, "seconds": round(seconds, 3)}
    if window is not None:
        from pytest_llmops.scoring.windows import summarize_windows

        summary["windows"] = summarize_windows(every_item, window)
    decided = []
    if gates:
        from pytest_llmops.scoring.gates import evaluate_summary_gates

        decided = evaluate_summary_gates(gates, summary, each_window=args.each_window)
        summary["gates"] = [gate.expression for gate in gates]
        summary["gate_results"] = [gate.model_dump() for gate in decided]
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    for problem in problems[:5]:
        print(f"llmops: {problem}", file=sys.stderr)
    rate = f"{len(scored) / seconds:.0f} records/s" if seconds > 0 and scored else "-"
    print(f"scored {len(scored)} records ({len(done)} already in {args.out}) with {len(checks)} checks on "
          f"{args.engine}: {rate}; summary: {summary_path}")
    for label, entry in summary["checks"].items():
        rate_text = "-" if entry["pass_rate"] is None else (
            f"{entry['pass_rate']:.3f} [{entry['pass_rate_low']:.3f}, {entry['pass_rate_high']:.3f}]")
        print(f"  {label}: {entry['passed']} passed, {entry['failed']} failed, {entry['unmeasured']} unmeasured; "
              f"pass rate {rate_text}")
    if window is not None:
        found = summary["windows"]
        no_time = f"; {found['no_time']} records with no time in none" if found["no_time"] else ""
        print(f"  {len(found['windows'])} windows of {window.text} in the summary{no_time}")
    from pytest_llmops.scoring.gates import print_gates

    print_gates(decided)
    return 1 if any(gate.verdict != "pass" for gate in decided) else 0


def _gates(args: argparse.Namespace, checks: list[Any]) -> list[Any]:
    """The checks file's ``gates = [...]`` and the --gate options, parsed before anything is scored."""
    from pytest_llmops.gates.parse import GateSyntaxError
    from pytest_llmops.scoring.checks import load_gates
    from pytest_llmops.scoring.gates import parse_summary_gates

    gates = []
    try:
        gates += parse_summary_gates(load_gates(args.checks), source=f"{args.checks}: gates")
        gates += parse_summary_gates(args.gate, source="--gate")
    except GateSyntaxError as exc:
        raise _Refused(str(exc)) from None
    labels = {check.label for check in checks}
    for gate in gates:
        if gate.metric not in labels:
            raise _Refused(f"{gate.source}: gate {gate.expression!r} names no check of {args.checks} "
                           f"(its checks: {', '.join(sorted(labels))})")
    if args.each_window and not gates:
        raise _Refused("--each-window needs gates (--gate EXPR, or gates = [...] in the checks file)")
    return gates


def _window(args: argparse.Namespace) -> Any:
    from pytest_llmops.scoring.windows import parse_window

    if args.window is None:
        if args.each_window:
            raise _Refused("--each-window needs --window (e.g. --window 1h)")
        return None
    try:
        spec = parse_window(args.window)
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    if spec.every is not None and not args.time_field:
        raise _Refused(f"--window {args.window} groups records by time: give --time-field (the record field "
                       "holding its time), or --window N for N records a window")
    return spec


def _append_jsonl(path: Path, scored: list[dict[str, Any]]) -> None:
    if path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with path.open("a", encoding="utf-8") as out:
            out.write("\n")  # end the line an interrupted run cut, so the next record starts on its own
    with path.open("a", encoding="utf-8") as out:
        for item in scored:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")


def _need_pyarrow() -> None:
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise _Refused("a .parquet --out needs pyarrow (pip install pyarrow, or 'pytest-llmops[ray]')")


def write_parquet(path: Path, scored: list[dict[str, Any]]) -> None:
    """One row a record: ``id`` and ``<check>.value`` / ``.verdict`` / ``.reason`` columns (pyarrow).

    Parquet files are written whole (to a temporary file, then renamed), so ``--resume`` rewrites it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for item in scored:
        row: dict[str, Any] = {"id": str(item["id"])}
        if "time" in item:
            row["time"] = item["time"]
        for label, score in item["scores"].items():
            row |= {f"{label}.value": score["value"], f"{label}.verdict": score["verdict"],
                    f"{label}.reason": score["reason"]}
        rows.append(row)
    temporary = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), temporary)
    temporary.replace(path)


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    items = []
    for row in pq.read_table(path).to_pylist():
        labels = sorted({key.rsplit(".", 1)[0] for key in row if key not in ("id", "time")})
        kept_time = {"time": row["time"]} if "time" in row else {}
        items.append({"id": row["id"], **kept_time, "scores": {label: {part: row.get(f"{label}.{part}")
                                                         for part in ("value", "verdict", "reason")}
                                                 for label in labels if row.get(f"{label}.verdict") is not None}})
    return items


def _read_scored(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return _read_parquet(path)
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:
            # A line cut by an interrupted run: its record is scored again rather than lost.
            print(f"llmops: {path}:{number}: incomplete line ignored; its record is scored again", file=sys.stderr)
    return items
