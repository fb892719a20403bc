"""The labelled set an audit runs over: one JSON object a line.

``pairwise``: ``{"input", "response_a", "response_b", "label"}`` with
``label`` ``a``, ``b`` or ``tie`` (the answer people preferred).
``rubric`` and ``faithfulness``: ``{"input", "output", "label"}`` with
``label`` pass/fail (or true/false, yes/no, 1/0), and ``context`` (needed by
``faithfulness``, passed to the rubric when present). Any row may carry
``criteria`` (it replaces ``--criteria`` for that row) and ``id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmops._jsonl import json_objects

__all__ = ["TEMPLATES", "AuditInputError", "AuditItem", "load_audit_items", "shipped_labels"]

#: The judge templates an audit can run, and the shipped labelled set for each.
TEMPLATES = {"pairwise": "pairwise.jsonl", "rubric": "faithfulness.jsonl", "faithfulness": "faithfulness.jsonl"}
DATA_DIR = Path(__file__).with_name("data")
_VERDICT_WORDS = {
    "pass": "pass", "fail": "fail", "true": "pass", "false": "fail", "yes": "pass", "no": "fail",
    "1": "pass", "0": "fail",
}
_PAIR_WORDS = {"a": "a", "b": "b", "tie": "tie"}


class AuditInputError(ValueError):
    """Bad audit input; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class AuditItem:
    """One labelled item: the texts judged and the human label (``pass``/``fail`` or ``a``/``b``/``tie``)."""

    input: str
    label: str
    line: int
    id: str
    output: str = ""
    context: Any = ""
    response_a: str = ""
    response_b: str = ""
    criteria: str | None = None


def shipped_labels(template: str) -> Path:
    """The labelled set that ships for ``template``."""
    check_template(template)
    return DATA_DIR / TEMPLATES[template]


def check_template(template: str) -> str:
    if template not in TEMPLATES:
        raise AuditInputError(
            f"unknown judge template {template!r} for an audit; use one of: {', '.join(TEMPLATES)}"
        )
    return template


def _label(value: Any, template: str, where: str) -> str:
    word = ("true" if value else "false") if isinstance(value, bool) else str(value).strip().lower()
    words = _PAIR_WORDS if template == "pairwise" else _VERDICT_WORDS
    if word not in words:
        allowed = '"a", "b" or "tie"' if template == "pairwise" else '"pass" or "fail" (or true/false, yes/no, 1/0)'
        raise AuditInputError(f"{where}: label {value!r} is not a {template} verdict; use {allowed}")
    return words[word]


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise AuditInputError(f"{where}: {key} must be a string, got {type(value).__name__}")
    return value


def _item(data: dict[str, Any], template: str, where: str, number: int) -> AuditItem:
    texts = ("input", "response_a", "response_b") if template == "pairwise" else ("input", "output")
    missing = [key for key in (*texts, "label") if key not in data]
    if template == "faithfulness" and not data.get("context"):
        missing.append("context")
    if missing:
        raise AuditInputError(
            f"{where}: missing {', '.join(missing)}; a {template} audit row needs "
            + ", ".join((*texts, "label")) + (" and context" if template == "faithfulness" else "")
        )
    values = {key: _text(data, key, where) for key in texts}
    criteria = data.get("criteria")
    if criteria is not None and (not isinstance(criteria, str) or not criteria.strip()):
        raise AuditInputError(f"{where}: criteria must be a non-empty string when given")
    return AuditItem(
        **values,
        label=_label(data["label"], template, where),
        context=data.get("context", ""),
        criteria=criteria,
        id=str(data.get("id", number)),
        line=number,
    )


def load_audit_items(path: str | Path, template: str) -> list[AuditItem]:
    """Read a labelled JSONL file for a ``template`` audit; every problem names the file and line."""
    check_template(template)
    path = Path(path)
    items = []
    missing = (f"labels file; pass a JSONL file of labelled items with --labels "
               f"(or leave --labels out to use the shipped {TEMPLATES[template]})")
    for where, number, data in json_objects(path, AuditInputError, missing=missing):
        items.append(_item(data, template, where, number))
    if not items:
        raise AuditInputError(f"{path}: holds no labelled items; add one JSON object a line")
    return items
