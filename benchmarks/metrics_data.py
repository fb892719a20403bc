"""Readers for the shared datasets used by the metrics benchmarks (REALSumm, WMT23 en-de).

The data stays in the shared datasets folder (default ``/work/shared/datasets``,
or ``../shared/datasets`` next to the repository); nothing is copied here.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASETS = Path("/work/shared/datasets")

_SENTENCE = re.compile(r"<t>(.*?)</t>", re.DOTALL)


def datasets_dir(path: str | Path | None) -> Path:
    """The datasets folder: ``path`` if given, else the default, else ``../shared/datasets``."""
    candidates = (
        [Path(path)] if path else [DEFAULT_DATASETS, Path(__file__).resolve().parents[2] / "shared" / "datasets"]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SystemExit(
        f"datasets folder not found (tried {', '.join(map(str, candidates))}); pass it as the first argument"
    )


def sentences(tagged: str) -> list[str]:
    """The sentences of a REALSumm text, from its ``<t> ... </t>`` tags."""
    found = [" ".join(s.split()) for s in _SENTENCE.findall(tagged)]
    return [s for s in found if s] or [" ".join(tagged.split())]


@dataclass(frozen=True)
class SummaryPair:
    doc_id: int
    system: str
    summary: list[str]
    reference: list[str]
    scores: dict[str, float]


def realsumm(datasets: Path) -> list[SummaryPair]:
    """REALSumm's abstractive systems: summary and reference sentences, with the stored scores."""
    path = datasets / "summarization" / "realsumm_abs.jsonl"
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise SystemExit(f"{path}:{number}: not JSON ({error})") from error
            pairs.append(
                SummaryPair(
                    row["doc_id"], row["system"], sentences(row["summary"]), sentences(row["reference"]), row["scores"]
                )
            )
    return pairs


@dataclass(frozen=True)
class WMTSystem:
    name: str
    outputs: list[str]
    human: float  # mean segment score (DA+SQM, 0-100) over the segments that have one
    judged: int


def wmt23(datasets: Path) -> tuple[list[str], list[WMTSystem]]:
    """WMT23 en-de: the references and every system but ``refA`` (which is the reference itself)."""
    folder = datasets / "translation" / "wmt23_en-de"
    references = (folder / "reference.txt").read_text(encoding="utf-8").split("\n")
    if references and references[-1] == "":
        references.pop()
    human: dict[str, list[float]] = defaultdict(list)
    with (folder / "scores.tsv").open(encoding="utf-8") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            if row["human_score"] not in ("", "None"):
                human[row["system"]].append(float(row["human_score"]))
    systems = []
    for path in sorted((folder / "systems").glob("*.txt")):
        if path.stem == "refA":
            continue
        outputs = path.read_text(encoding="utf-8").split("\n")
        if outputs and outputs[-1] == "":
            outputs.pop()
        if len(outputs) != len(references):
            raise SystemExit(f"{path}: {len(outputs)} lines but {len(references)} references")
        scores = human[path.stem]
        systems.append(WMTSystem(path.stem, outputs, sum(scores) / len(scores), len(scores)))
    return references, systems
