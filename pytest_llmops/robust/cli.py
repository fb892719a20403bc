"""``llmops redteam generate``: a fixed, reviewable attack set for CI, drawn from the same strategies.

    llmops redteam generate --task task.txt --strategies perturb,inject,jailbreak --n 60 --seed 1 --out cases.jsonl

The same task, strategies, ``--n`` and ``--seed`` give the same file (for
one hypothesis version), so the set can be reviewed once, committed, and
run as ordinary parametrised eval cases (``load_cases("cases.jsonl")``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

STRATEGIES = ("perturb", "inject", "jailbreak")


def _strategies(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown strategies {unknown or text!r}; use a comma-separated list of {', '.join(STRATEGIES)}"
        )
    return chosen


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more, e.g. --n 50")
    return value


def add_redteam_parser(commands: argparse._SubParsersAction) -> None:
    redteam = commands.add_parser("redteam", help="red-team attack sets from the robustness strategies")
    actions = redteam.add_subparsers(dest="action", required=True)
    generate = actions.add_parser("generate", help="write a fixed attack set as a JSONL cases file")
    generate.add_argument("--task", type=Path, required=True, help="text file holding the task prompt under attack")
    generate.add_argument("--strategies", type=_strategies, default=STRATEGIES,
                          help=f"comma-separated: {', '.join(STRATEGIES)} (default: all)")
    generate.add_argument("--n", type=_positive, default=50, help="cases to write (default: 50)")
    generate.add_argument("--seed", type=int, default=0, help="hypothesis seed (default: 0)")
    generate.add_argument("--canary", default="CANARY-7F3A", help="word an injected instruction asks the model to say")
    generate.add_argument("--out", type=Path, required=True, help="JSONL file to write, e.g. cases.jsonl")
    generate.set_defaults(handler=_generate_command)


def _row(value: Any, task: str) -> dict[str, Any]:
    from pytest_llmops.strategies import Injection, Jailbreak, Perturbed

    if isinstance(value, Perturbed):
        return {"kind": "perturbation", "strategy": f"perturb:{value.strategy}", "original": value.original,
                "input": str(value), "edits": [str(edit) for edit in value.edits]}
    if isinstance(value, Injection):
        return {"kind": "injection", **value.to_dict(), "strategy": f"inject:{value.strategy}"}
    assert isinstance(value, Jailbreak)
    return {"kind": "jailbreak", "strategy": value.strategy, "task": task, "attack_id": value.id, "input": value.text}


def generate(task: str, strategies: tuple[str, ...], n: int, seed: int, canary: str) -> list[dict[str, Any]]:
    """``n`` distinct cases drawn by hypothesis under ``seed`` from ``strategies`` (in turn, so each is covered)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as use_seed
    from hypothesis import strategies as st

    from pytest_llmops.strategies import injections, jailbreaks, perturbations

    makers = {"perturb": lambda: perturbations(task), "inject": lambda: injections(task, canary=canary),
              "jailbreak": jailbreaks}
    per = {name: n // len(strategies) + (i < n % len(strategies)) for i, name in enumerate(strategies)}
    rows: list[dict[str, Any]] = []
    for name in strategies:
        rows.extend(_draw(makers[name](), per[name], seed, task, given, settings, use_seed, st, Phase, HealthCheck))
    for index, row in enumerate(rows):
        row["id"] = f"{row['kind']}-{index:03d}"
    return [{"id": row.pop("id"), **row} for row in rows]


def _draw(strategy: Any, wanted: int, seed: int, task: str, given: Any, settings: Any, use_seed: Any, st: Any,
          phase: Any, health: Any) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    @use_seed(seed)
    @settings(max_examples=max(10, 4 * wanted), database=None, deadline=None, phases=[phase.generate],
              suppress_health_check=list(health))
    @given(st.data())
    def collect(data: Any) -> None:
        row = _row(data.draw(strategy), task)  # always drawn: hypothesis requires the same draws per example
        # A perturbation whose edits cancelled out is the task itself: not an attack.
        if len(found) < wanted and not (row["kind"] == "perturbation" and not row["edits"]):
            found.setdefault(json.dumps(row, sort_keys=True, ensure_ascii=False), row)

    collect()
    return list(found.values())


def _generate_command(args: argparse.Namespace) -> int:
    try:
        task = args.task.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"llmops: cannot read --task {args.task}: {exc}", file=sys.stderr)
        return 2
    if not task:
        print(f"llmops: --task {args.task} is empty; write the task prompt under attack in it", file=sys.stderr)
        return 2
    rows = generate(task, args.strategies, args.n, args.seed, args.canary)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        tmp.replace(args.out)
    except OSError as exc:
        print(f"llmops: cannot write --out {args.out}: {exc}", file=sys.stderr)
        return 2
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    short = f" (fewer distinct cases than --n {args.n}: the strategies ran out)" if len(rows) < args.n else ""
    print(f"wrote {len(rows)} cases ({summary}) to {args.out}{short}")
    return 0
