"""The label store: one JSON object a line, one line per item and reviewer.

    {"item_id": "...", "reviewer": "alice", "label": "pass", "at": "2026-12-03T11:00:00Z", "note": "",
     "nodeid": "...", "score": "rubric", "item_sha256": "...", "judged": {...}, "judge": {...}}

Importing again replaces a reviewer's earlier label of the same item (the
newest ``at`` wins) and keeps everyone else's. ``majority`` turns an item's
labels into one verdict; ``calibration_lines`` writes the file ``llmops
calibrate`` reads.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REQUIRED = ("item_id", "reviewer", "label", "nodeid", "score", "item_sha256")
_WORDS = {"pass": "pass", "fail": "fail", "true": "pass", "false": "fail", "yes": "pass", "no": "fail",
          "1": "pass", "0": "fail", "good": "pass", "bad": "fail", "accept": "pass", "reject": "fail"}


class LabelError(ValueError):
    """A labels file that cannot be read; the message names the file, the line or item and the fix."""


def verdict_word(value: Any, where: str) -> str:
    """A reviewer's label as ``pass`` or ``fail``."""
    word = ("true" if value else "false") if isinstance(value, bool) else str(value).strip().lower()
    if word not in _WORDS:
        raise LabelError(f'{where}: label {value!r} is not a verdict; use "pass" or "fail" (or yes/no, true/false)')
    return _WORDS[word]


def read_store(path: Path) -> list[dict[str, Any]]:
    """Every label in the store at ``path``."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LabelError(f"{path}: no labels file; write one with `llmops review import FILE --into {path}`") from None
    labels = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise LabelError(f"{path}:{number}: not valid JSON ({error.msg}); one label object a line") from None
        missing = [key for key in REQUIRED if not isinstance(data, dict) or key not in data]
        if missing:
            raise LabelError(f"{path}:{number}: missing {', '.join(missing)}; re-import the reviewed file with "
                             f"`llmops review import`")
        data["label"] = verdict_word(data["label"], f"{path}:{number}")
        labels.append(data)
    return labels


def merge(old: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One label per (item, reviewer): the newest by ``at``; on a tie the newly imported one."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for label in [*old, *new]:
        key = (label["item_id"], label["reviewer"])
        if key not in kept or str(label.get("at", "")) >= str(kept[key].get("at", "")):
            kept[key] = label
    return list(kept.values())


def write_store(path: Path, labels: Sequence[dict[str, Any]]) -> None:
    """Write the store atomically (a reader never sees half of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for label in labels:
                out.write(json.dumps(label, sort_keys=True, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def majority(labels: Sequence[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The majority verdict of an item's labels (None on a tie) and the votes counted (newest per reviewer)."""
    votes = merge([], labels)
    counts = Counter(label["label"] for label in votes)
    ranked = counts.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None, votes
    return ranked[0][0], votes


def by_item(labels: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    items: dict[str, list[dict[str, Any]]] = {}
    for label in labels:
        items.setdefault(label["item_id"], []).append(label)
    return items


def calibration_lines(labels: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{id, input, output, context, label, ...}`` per item with a majority: what ``llmops calibrate`` reads.

    Only single-answer checks (those with an ``output``): a pairwise item has no pass/fail label to calibrate.
    """
    lines = []
    for item, group in by_item(labels).items():
        verdict, votes = majority(group)
        judged = group[0].get("judged") or {}
        if verdict is None or "output" not in judged:
            continue
        lines.append({
            "id": item,
            "input": judged.get("input", ""),
            "output": judged["output"],
            "context": judged.get("context", ""),
            "label": verdict,
            "reviewers": sorted(v["reviewer"] for v in votes),
            "nodeid": group[0]["nodeid"],
            "score": group[0]["score"],
        })
    return lines
