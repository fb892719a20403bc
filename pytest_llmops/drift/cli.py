"""``llmops drift``: compare a window of a production log with a saved baseline.

Subcommands::

    llmops drift save  LOG --name NAME [window] [--field prompt] [--embedder minilm] [--overwrite]
    llmops drift check LOG --baseline NAME [window] [--method mmd ...] [--alpha 0.05] [--html out.html]
    llmops drift list
    llmops drift scores SCORED.summary.json --baseline BASELINE.summary.json [--check pii] [--alpha 0.05]

A window is ``--last N`` records, or ``--since``/``--until`` times, or
``--duration 24h`` ending at the newest record (combinable with ``--last``).
``check`` exits 0 when no test finds drift, 1 when one does, 2 on a usage or
input error (bad log line, missing baseline, different embedders, too few
records). With several ``--method`` options each runs at alpha / their
number (Bonferroni), so the false-alarm rate of the command stays at alpha.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from pytest_llmops.drift.methods import METHODS
from pytest_llmops.drift.result import DriftInputError

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "log", type=Path, help="JSONL log of prompt/response records (schema: pytest_llmops.drift.logs)"
    )
    parser.add_argument(
        "--field",
        choices=("prompt", "response", "pair"),
        default=None,
        help="which text to embed: prompt, response, or pair (both). "
        "Default: the baseline's field for check, prompt for save",
    )
    window = parser.add_argument_group("window (default: the whole log)")
    window.add_argument("--last", type=int, metavar="N", help="the last N records (after any time bounds)")
    window.add_argument(
        "--since", metavar="TIME", help="records at or after TIME (ISO 8601, e.g. 2024-06-01T00:00:00Z)"
    )
    window.add_argument("--until", metavar="TIME", help="records before TIME (ISO 8601)")
    window.add_argument(
        "--duration", metavar="SPAN", help="the SPAN (90m, 24h, 7d) ending at the newest record or --until"
    )
    names = parser.add_argument_group("the log's own field names (default: the drift schema's)")
    names.add_argument("--prompt-field", metavar="KEY", help="the key holding the prompt (default prompt)")
    names.add_argument("--response-field", metavar="KEY",
                       help="the key holding the answer, e.g. output for the logs `llmops score` reads (default response)")
    names.add_argument("--time-field", metavar="KEY", help="the key holding the record's time (default timestamp)")
    parser.add_argument(
        "--allow-malformed",
        action="store_true",
        help="skip malformed log lines (each is reported on stderr) instead of stopping",
    )
    parser.add_argument(
        "--embedder",
        default=None,
        help="minilm, hashing, hashing:<features>, or package.module:attribute. "
        "Default: the one the baseline was saved with for check, minilm for save",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="the project's state folder holding baselines/ (default: .llmops at the project root)",
    )


def add_drift_parser(subparsers: Any) -> None:
    """Add the ``drift`` command (with ``save``, ``check`` and ``list``) to an argparse subparsers object."""
    drift = subparsers.add_parser(
        "drift",
        help="embedding drift of production logs against a saved baseline",
        description="Compare a window of a production log with a saved baseline of embeddings. "
        "Exit status of check: 0 no drift, 1 drift, 2 usage or input error.",
    )
    actions = drift.add_subparsers(dest="drift_action", metavar="{save,check,list,scores}")
    actions.required = True

    save = actions.add_parser("save", help="save a log window as a named baseline")
    _add_log_options(save)
    save.add_argument("--name", required=True, help="baseline name (letters, digits, . _ -)")
    save.add_argument("--overwrite", action="store_true", help="replace an existing baseline of that name")

    check = actions.add_parser("check", help="test a log window against a baseline; exit 1 on drift")
    _add_log_options(check)
    check.add_argument("--baseline", required=True, help="baseline name, or the path of its .npz/.json")
    check.add_argument(
        "--method", action="append", choices=tuple(METHODS), default=None, help="drift test (repeatable; default mmd)"
    )
    check.add_argument("--alpha", type=float, default=0.05, help="false-alarm rate of the whole check (default 0.05)")
    check.add_argument(
        "--every", metavar="SPAN", help="test each window of SPAN (1h, 1d; UTC-aligned, the windows of "
        "`llmops score --window`) against the baseline, each at alpha / the number of windows",
    )
    check.add_argument("--permutations", type=int, default=None, help="permutations per test (default: the method's)")
    check.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0: the same inputs give the same answer)"
    )
    check.add_argument("--clusters", type=int, default=None, help="number of k-means clusters in the explanation")
    check.add_argument(
        "--judge", default=None, metavar="MODEL", help="a litellm model name that names the clusters (optional)"
    )
    check.add_argument("--judge-api-base", default=None, metavar="URL", help="base URL of the judge model")
    check.add_argument("--html", type=Path, default=None, help="write a self-contained HTML report here")
    check.add_argument("--png", type=Path, default=None, help="write the picture here")
    check.add_argument("--json", type=Path, default=None, help="write the full results as JSON here")

    scores = actions.add_parser(
        "scores", help="pass rates of an `llmops score` summary (each window) against a baseline summary; exit 1 "
        "on drift",
    )
    scores.add_argument("summary", type=Path, help="the summary JSON of `llmops score` (with --window: per window)")
    scores.add_argument("--baseline", type=Path, required=True, help="the summary JSON to compare with")
    scores.add_argument("--check", action="append", default=None, help="only this check (repeatable; default all)")
    scores.add_argument("--alpha", type=float, default=0.05, help="false-alarm rate of the whole command")

    listing = actions.add_parser("list", help="list saved baselines")
    listing.add_argument("--state-dir", type=Path, default=None, help="the project's state folder (default: .llmops)")
    drift.set_defaults(handler=run_drift_command)


def run_drift_command(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run a parsed ``llmops drift`` command; returns the exit code (0 no drift, 1 drift, 2 error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    from pytest_llmops.drift._deps import MissingDependencyError
    from pytest_llmops.drift.baseline import BaselineError

    try:
        if args.drift_action == "list":
            return _list(args, out)
        if args.drift_action == "save":
            return _save(args, out, err)
        if args.drift_action == "scores":
            return _scores(args, out)
        return _check(args, out, err)
    except (DriftInputError, BaselineError, MissingDependencyError, ValueError, OSError) as error:
        print(f"llmops drift {args.drift_action}: error: {error}", file=err)
        return EXIT_ERROR


def _window(args: argparse.Namespace, err: TextIO) -> tuple[list[Any], str]:
    from pytest_llmops.drift.logs import read_log, select_window

    if args.last is not None and args.last < 1:
        raise DriftInputError(f"--last must be a positive number of records, got {args.last}")
    fields = {name: key for name, key in (("prompt", args.prompt_field), ("response", args.response_field),
                                          ("timestamp", args.time_field)) if key}
    log = read_log(args.log, allow_malformed=args.allow_malformed, fields=fields or None)
    for problem in log.problems:
        print(f"warning: skipped {problem.describe(args.log)}", file=err)
    records = select_window(log.records, last=args.last, since=args.since, until=args.until, duration=args.duration)
    bounds = [
        f"{name} {value}"
        for name, value in (
            ("since", args.since),
            ("until", args.until),
            ("duration", args.duration),
            ("last", args.last),
        )
        if value is not None
    ]
    description = f"{args.log} ({', '.join(bounds) if bounds else 'whole log'}): {len(records)} of {len(log)} records"
    if log.problems:
        description += f", {len(log.problems)} malformed line(s) skipped"
    return records, description


def _texts(records: list[Any], field: str, source: str) -> list[str]:
    from pytest_llmops.drift.logs import window_texts

    texts = window_texts(records, field)
    if len(texts) < 2:
        raise DriftInputError(
            f"{source}: only {len(texts)} record(s) with a {field!r} text; a drift test needs at least 2"
        )
    return texts


def _save(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pytest_llmops.drift.baseline import save_baseline
    from pytest_llmops.drift.embedders import resolve_embedder

    field = args.field or "prompt"
    records, description = _window(args, err)
    texts = _texts(records, field, description)
    spec = args.embedder or "minilm"
    embedder = resolve_embedder(spec)
    baseline = save_baseline(
        args.name,
        texts,
        embedder=embedder,
        source=f"log {description}",
        text_field=field,
        root=args.state_dir,
        overwrite=args.overwrite,
        extra={"embedder_spec": spec},
    )
    print(
        f"saved baseline {baseline.name!r}: {baseline.info.count} {field} texts, {baseline.info.dim} dimensions, "
        f"embedder {baseline.signature!r}\n  -> {baseline.path}",
        file=out,
    )
    return EXIT_OK


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pytest_llmops.drift.baseline import load_baseline
    from pytest_llmops.drift.embedders import resolve_embedder
    from pytest_llmops.drift.report import build_report, render_html, render_png

    baseline = load_baseline(args.baseline, root=args.state_dir)
    field = args.field or baseline.info.text_field or "prompt"
    if baseline.info.text_field and field != baseline.info.text_field:
        raise DriftInputError(
            f"baseline {baseline.name!r} holds {baseline.info.text_field!r} texts but --field {field} was asked for; "
            f"compare like with like (drop --field, or save a baseline of {field} texts)"
        )
    records, description = _window(args, err)
    texts = _texts(records, field, description) if not args.every else []
    saved_spec = baseline.info.extra.get("embedder_spec")
    spec = args.embedder or (saved_spec if isinstance(saved_spec, str) else "minilm")
    embedder = resolve_embedder(spec)
    if embedder.signature != baseline.signature:
        hint = f" (--embedder {saved_spec})" if isinstance(saved_spec, str) else ""
        raise DriftInputError(
            f"baseline {baseline.name!r} was embedded by {baseline.signature!r}, but --embedder {spec} is "
            f"{embedder.signature!r}; pass the baseline's embedder{hint}, or save a new baseline with this one"
        )
    methods = tuple(dict.fromkeys(args.method or ["mmd"]))
    if args.every:
        return _check_windows(args, records, description, baseline, embedder, methods, field, out)
    with _judge(args) as judge:
        report = build_report(
            texts,
            baseline,
            methods=methods,
            alpha=args.alpha,
            seed=args.seed,
            n_permutations=args.permutations,
            embedder=embedder,
            judge=judge,
            n_clusters=args.clusters,
            title=f"Drift of {args.log.name} against {baseline.name!r}",
            notes=(
                f"current: {description}",
                f"baseline: {baseline.name} ({baseline.info.source or 'no source recorded'}, "
                f"created {baseline.info.created})",
                f"embedded field: {field}",
            ),
        )
    _print_report(report, out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.png is not None:
        print(f"picture: {render_png(report, args.png)}", file=out)
    if args.html is not None:
        print(f"report: {render_html(report, args.html)}", file=out)
    return EXIT_DRIFT if report.drifted else EXIT_OK


def _check_windows(args: argparse.Namespace, records: list[Any], description: str, baseline: Any, embedder: Any,
                   methods: tuple[str, ...], field: str, out: TextIO) -> int:
    """``--every SPAN``: each UTC-aligned window against the baseline, at alpha / the number of windows."""
    from pytest_llmops.drift.logs import iter_windows, window_texts
    from pytest_llmops.drift.report import build_report
    from pytest_llmops.scoring.windows import EPOCH

    for flag in ("html", "png", "clusters", "judge"):
        if getattr(args, flag):
            raise DriftInputError(f"--{flag} describes one window; drop --every, or pick the window with --since/--until")
    from pytest_llmops.drift.logs import parse_duration

    try:
        parse_duration(args.every)
    except ValueError as error:
        raise DriftInputError(f"--every {args.every}: {error}") from None
    windows = iter_windows(records, every=args.every, origin=EPOCH)
    if not windows:
        raise DriftInputError(f"{description}: no record to cut into windows of {args.every}")
    level = args.alpha / len(windows)
    print(f"Drift of {args.log.name} against {baseline.name!r}, per {args.every} window: {len(windows)} windows, "
          f"each at alpha {level:.3g} ({description}; embedded field: {field})", file=out)
    rows, drifted, unmeasured = [], 0, 0
    for window in windows:
        texts = window_texts(list(window.records), field)
        if len(texts) < 2:
            unmeasured += 1
            print(f"  UNMEASURED [window={window.label}]: {len(texts)} {field} text(s); a drift test needs 2", file=out)
            rows.append({"window": window.label, "verdict": "unmeasured", "texts": len(texts)})
            continue
        report = build_report(texts, baseline, methods=methods, alpha=level, seed=args.seed,
                              n_permutations=args.permutations, embedder=embedder,
                              title=f"window {window.label}")
        drifted += report.drifted
        verdict = "drift" if report.drifted else "no drift"
        summaries = "; ".join(f"[{result.method}] {result.summary()}" for result in report.results)
        print(f"  {verdict.upper():<10} [window={window.label}] {len(texts)} texts: {summaries}", file=out)
        rows.append({"window": window.label, "verdict": verdict, "texts": len(texts), "report": report.to_dict()})
    if unmeasured and not drifted:
        print("  a window too small to test cannot be said not to drift: exit 1", file=out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"every": args.every, "alpha": args.alpha, "windows": rows}, indent=2) + "\n",
                             encoding="utf-8")
    return EXIT_DRIFT if drifted or unmeasured else EXIT_OK


@contextmanager
def _judge(args: argparse.Namespace) -> Iterator[Any]:
    """A judge client for naming clusters when ``--judge`` is given (loads the model layer only then)."""
    if not args.judge:
        yield None
        return
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

    runtime = ModelRuntime()
    config = ModelConfig(model=args.judge, role="judge", api_base=args.judge_api_base, params={"temperature": 0.0})
    try:
        yield LLMClient(config, runtime)
    finally:
        runtime.close()


def _print_report(report: Any, out: TextIO) -> None:
    print(f"{report.title}: {'DRIFT' if report.drifted else 'no drift'}", file=out)
    for note in report.notes:
        print(f"  {note}", file=out)
    for result in report.results:
        print(f"  [{result.method}] {result.summary()}", file=out)
    if report.results:
        effect = report.results[0].details
        print(
            f"  centroid moved {effect['centroid_euclidean']:.4g} ({effect['relative_shift']:.2f} x the baseline's "
            f"spread); cosine distance {effect['centroid_cosine_distance']:.4g}",
            file=out,
        )
    if report.clusters is not None and report.drifted:
        for line in report.clusters.describe(limit=5):
            print(f"  {line}", file=out)


def _read_summary(path: Path) -> dict[str, Any]:
    from pytest_llmops.scoring.gates import is_summary

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DriftInputError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise DriftInputError(f"{path}: not JSON ({error})") from None
    if not is_summary(data):
        raise DriftInputError(f"{path} is not a summary of `llmops score` (it has no 'checks' and 'records')")
    return data


def _scores(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_llmops.drift.scores import score_drift

    found = score_drift(_read_summary(args.summary), _read_summary(args.baseline), alpha=args.alpha,
                        checks=args.check)
    drifted = [row for row in found if row.verdict == "drift"]
    unmeasured = [row for row in found if row.verdict == "unmeasured"]
    print(f"pass rates of {args.summary} against {args.baseline}: {len(found)} test(s), "
          f"{len(drifted)} drifted, {len(unmeasured)} unmeasured (alpha {args.alpha:g}, Bonferroni)", file=out)
    for row in found:
        print(f"  {row.describe()}", file=out)
    if unmeasured and not drifted:
        print("  a window with no measured record cannot be said not to drift: exit 1", file=out)
    return EXIT_DRIFT if drifted or unmeasured else EXIT_OK


def _list(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_llmops.drift.baseline import baselines_dir, list_baselines

    found = list_baselines(args.state_dir)
    if not found:
        print(f"no baselines in {baselines_dir(args.state_dir)}", file=out)
        return EXIT_OK
    for info in found:
        print(f"{info.name}\t{info.count} x {info.dim}\t{info.created}\t{info.embedder}\t{info.source}", file=out)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_llmops.drift.cli ...``: the drift command on its own."""
    parser = argparse.ArgumentParser(prog="llmops")
    add_drift_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_drift_command(args)


if __name__ == "__main__":
    sys.exit(main())
