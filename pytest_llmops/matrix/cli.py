"""``llmops matrix show`` and ``llmops matrix best``: a stored run's matrices, and the winning cell as a file.

    llmops matrix show .llmops/results.json
    llmops matrix best .llmops/results.json --write best.toml [--matrix qa]

``best.toml`` holds an ``[llmops_matrix]`` table with the winning cell's
axis values, one value each: a suite's ``conftest.py`` that sets
``llmops_matrix = "best.toml"`` then runs its ``llm_matrix`` tests on that
cell alone. Exit codes: 0 done, 1 no measured best cell, 2 bad usage or
unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_RESULTS = ".llmops/results.json"


def add_matrix_parser(commands: argparse._SubParsersAction) -> None:
    matrix = commands.add_parser("matrix", help="show the matrices of a results file, or write the best cell")
    matrix.add_argument("action", choices=["show", "best"])
    matrix.add_argument("file", nargs="?", default=DEFAULT_RESULTS, help=f"results file (default: {DEFAULT_RESULTS})")
    matrix.add_argument("--matrix", metavar="NAME", help="which matrix (default: the only one)")
    matrix.add_argument("--write", type=Path, metavar="TOML", help="with best: write the winning cell here")
    matrix.set_defaults(handler=matrix_command)


def _summaries(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pytest_llmops.gates.cli import _read

    run = _read(Path(args.file))
    if run is None:
        return None
    summaries = run.matrices
    if not summaries and any(case.matrix is not None for case in run.cases):
        from pytest_llmops.matrix.summary import summarize_matrices

        summaries = summarize_matrices(run.cases)
    if not summaries:
        print(f"llmops: {args.file} has no matrix (no case ran in an llm_matrix cell)", file=sys.stderr)
        return None
    if args.matrix is not None:
        summaries = [s for s in summaries if s.name == args.matrix]
        if not summaries:
            names = ", ".join(s.name for s in run.matrices)
            print(f"llmops: no matrix {args.matrix!r} in {args.file}; it has: {names}", file=sys.stderr)
            return None
    return summaries


def matrix_command(args: argparse.Namespace) -> int:
    from pytest_llmops.matrix.summary import text_lines

    summaries = _summaries(args)
    if summaries is None:
        return 2
    if args.action == "show":
        for summary in summaries:
            print("\n".join(text_lines(summary)))
        return 0
    if len(summaries) > 1:
        names = ", ".join(s.name for s in summaries)
        print(f"llmops: {args.file} has several matrices ({names}); choose one with --matrix NAME", file=sys.stderr)
        return 2
    summary = summaries[0]
    print(summary.statement)
    if summary.best is None:
        return 1
    if args.write is not None:
        best = next(cell for cell in summary.cells if cell.cell == summary.best)
        try:
            args.write.write_text(best_toml(summary, best.axes, args.file), encoding="utf-8")
        except OSError as exc:
            print(f"llmops: cannot write {args.write}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.write}")
    return 0


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def best_toml(summary, axes: dict, source: str) -> str:  # type: ignore[no-untyped-def]
    """The ``[llmops_matrix]`` table of the best cell, with how it was chosen as comments."""
    lines = [
        f"# The best cell of matrix {summary.name!r} in {source}, written by `llmops matrix best`.",
        f"# {summary.statement}",
        "# A conftest.py with `llmops_matrix = \"<this file>\"` runs its llm_matrix tests on this cell.",
        "[llmops_matrix]",
        f"name = {_toml_value(summary.name)}",
    ]
    lines += [f"{axis} = [{_toml_value(value)}]" for axis, value in axes.items()]
    return "\n".join(lines) + "\n"
