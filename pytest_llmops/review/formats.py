"""Review tasks written for Label Studio, Argilla or plain JSONL, and labels read back from each.

Label Studio: a JSON list of tasks (``data`` holds the texts; with
``--show-judge`` the judge's verdict is a ``prediction``); a labeling config
to paste into the project is written beside it (``*.labelstudio.xml``). Its
JSON export is read back: each annotation's ``verdict`` choice, its
``completed_by`` and ``updated_at`` / ``created_at``.

Argilla: ``{"settings": ..., "records": [...]}`` with a ``verdict``
label-selection question; the judge's verdict is a ``suggestion``. Read back:
records with ``responses`` as Argilla 2 writes them (``{"verdict": [{"value",
"user_id"}]}``) or as Argilla 1 did (``[{"user_id", "values": {"verdict":
{"value"}}, "status"}]``); discarded or draft responses are not labels.

JSONL: one task a line; labels come back as lines with ``item_id``,
``reviewer`` and ``label`` (``at`` and ``note`` optional).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmops.review.labels import LabelError, verdict_word
from pytest_llmops.review.tasks import ReviewTask

FORMATS = ("labelstudio", "argilla", "jsonl")
QUESTION = "verdict"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n\n".join(f"[{i}] {v}" for i, v in enumerate(value, start=1))
    return "" if value is None else str(value)


def _flat(task: ReviewTask) -> dict[str, str]:
    """The texts as named strings (what a reviewer's screen shows)."""
    return {key: _text(value) for key, value in task.judged.items()}


LABEL_STUDIO_CONFIG = """<View>
  <Header value="$score on $nodeid"/>
  <Text name="input" value="$input"/>
  <Text name="context" value="$context"/>
  <Text name="output" value="$output"/>
  <Choices name="verdict" toName="output" choice="single" required="true">
    <Choice value="pass"/>
    <Choice value="fail"/>
  </Choices>
  <TextArea name="note" toName="output" placeholder="why (optional)"/>
</View>
"""


def export_tasks(tasks: Sequence[ReviewTask], path: Path, fmt: str, *, show_judge: bool = False) -> list[Path]:
    """Write ``tasks`` to ``path`` in ``fmt``; returns the files written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(t.to_dict(show_judge=show_judge), ensure_ascii=False) + "\n" for t in tasks),
                        encoding="utf-8")
        return [path]
    if fmt == "labelstudio":
        out = []
        for task in tasks:
            entry: dict[str, Any] = {"data": {"item_id": task.item_id, "nodeid": task.nodeid, "score": task.score,
                                              "item_sha256": task.item_sha256, **_flat(task)}}
            if show_judge:
                entry["predictions"] = [{
                    "model_version": task.judge.get("model", ""),
                    "score": task.judge.get("value"),
                    "result": [{"from_name": QUESTION, "to_name": "output", "type": "choices",
                                "value": {"choices": [task.judge.get("verdict")]}}],
                }]
            out.append(entry)
        path.write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
        config = path.with_suffix(".labelstudio.xml")
        config.write_text(LABEL_STUDIO_CONFIG, encoding="utf-8")
        return [path, config]
    if fmt == "argilla":
        fields = sorted({key for task in tasks for key in task.judged})
        records = []
        for task in tasks:
            record: dict[str, Any] = {
                "id": task.item_id,
                "fields": _flat(task),
                "metadata": {"nodeid": task.nodeid, "score": task.score, "item_sha256": task.item_sha256},
            }
            if show_judge:
                record["suggestions"] = [{"question_name": QUESTION, "value": task.judge.get("verdict"),
                                          "score": task.judge.get("value"), "agent": task.judge.get("model", "")}]
            records.append(record)
        settings = {
            "fields": [{"name": name, "type": "text"} for name in fields],
            "questions": [{"name": QUESTION, "type": "label_selection", "labels": ["pass", "fail"], "required": True},
                          {"name": "note", "type": "text", "required": False}],
            "metadata": [{"name": name, "type": "terms"} for name in ("nodeid", "score")],
        }
        path.write_text(json.dumps({"settings": settings, "records": records}, indent=2, ensure_ascii=False),
                        encoding="utf-8")
        return [path]
    raise LabelError(f"unknown review format {fmt!r}; use one of {', '.join(FORMATS)}")


# -- reading labels back -------------------------------------------------------------------


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelError(f"{path}: no such file; pass the file your review tool exported") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise LabelError(f"{path}:{number}: not valid JSON ({error.msg}); expected a JSON export or "
                                 f"one JSON object a line") from None
    return rows


def detect(data: Any) -> str:
    """Which tool wrote ``data``: labelstudio, argilla or jsonl."""
    if isinstance(data, dict) and "records" in data:
        return "argilla"
    rows = data if isinstance(data, list) else []
    first = rows[0] if rows and isinstance(rows[0], dict) else {}
    if "annotations" in first or ("data" in first and "item_id" in first.get("data", {})):
        return "labelstudio"
    if "fields" in first and ("responses" in first or "metadata" in first):
        return "argilla"
    return "jsonl"


def read_labels(path: Path, fmt: str = "auto") -> list[dict[str, Any]]:
    """Labels in a reviewed file: ``{item_id, reviewer, label, at, note}`` each; every problem names the spot."""
    data = _load(path)
    fmt = detect(data) if fmt == "auto" else fmt
    if fmt == "labelstudio":
        return _from_label_studio(data, path)
    if fmt == "argilla":
        return _from_argilla(data["records"] if isinstance(data, dict) else data, path)
    if fmt == "jsonl":
        return _from_jsonl(data if isinstance(data, list) else [data], path)
    raise LabelError(f"unknown review format {fmt!r}; use auto or one of {', '.join(FORMATS)}")


def _reviewer(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or value.get("id") or "unknown")
    return "unknown" if value in (None, "") else str(value)


def _from_label_studio(tasks: Any, path: Path) -> list[dict[str, Any]]:
    labels = []
    for number, task in enumerate(tasks if isinstance(tasks, list) else [], start=1):
        where = f"{path}: task {number}"
        item = (task.get("data") or {}).get("item_id") if isinstance(task, dict) else None
        if not item:
            raise LabelError(f"{where}: no data.item_id; export the tasks with `llmops review export` and import them "
                             f"into Label Studio unchanged")
        for annotation in task.get("annotations", []):
            if annotation.get("was_cancelled"):
                continue
            results = {r.get("from_name"): r.get("value", {}) for r in annotation.get("result", [])}
            choice = results.get(QUESTION, {}).get("choices") or []
            if not choice:
                continue  # an annotation that left the verdict empty is no label
            note = results.get("note", {}).get("text") or [""]
            labels.append({"item_id": item, "reviewer": _reviewer(annotation.get("completed_by")),
                           "label": verdict_word(choice[0], where),
                           "at": str(annotation.get("updated_at") or annotation.get("created_at") or ""),
                           "note": note[0] if isinstance(note, list) else str(note)})
    return labels


def _from_argilla(records: Any, path: Path) -> list[dict[str, Any]]:
    labels = []
    for number, record in enumerate(records if isinstance(records, list) else [], start=1):
        where = f"{path}: record {number}"
        item = record.get("id") if isinstance(record, dict) else None
        if not item:
            raise LabelError(f"{where}: no id; import the records written by `llmops review export --format argilla`")
        responses = record.get("responses") or {}
        if isinstance(responses, dict):  # Argilla 2: {question: [{value, user_id, status?}]}
            notes = {r.get("user_id"): r.get("value") for r in responses.get("note", [])}
            for response in responses.get(QUESTION, []):
                if response.get("status", "submitted") != "submitted":
                    continue
                user = _reviewer(response.get("user_id"))
                labels.append({"item_id": item, "reviewer": user, "label": verdict_word(response.get("value"), where),
                               "at": str(response.get("updated_at", "")), "note": notes.get(response.get("user_id")) or ""})
        else:  # Argilla 1: [{user_id, values: {question: {value}}, status}]
            for response in responses:
                if response.get("status", "submitted") != "submitted":
                    continue
                values = response.get("values", {})
                if QUESTION not in values:
                    continue
                labels.append({"item_id": item, "reviewer": _reviewer(response.get("user_id")),
                               "label": verdict_word(values[QUESTION].get("value"), where),
                               "at": str(response.get("updated_at", "")),
                               "note": (values.get("note") or {}).get("value", "")})
    return labels


def _from_jsonl(rows: list[Any], path: Path) -> list[dict[str, Any]]:
    labels = []
    for number, row in enumerate(rows, start=1):
        where = f"{path}:{number}"
        missing = [key for key in ("item_id", "reviewer", "label") if not isinstance(row, dict) or key not in row]
        if missing:
            raise LabelError(f"{where}: missing {', '.join(missing)}; each line needs item_id, reviewer and label")
        labels.append({"item_id": str(row["item_id"]), "reviewer": str(row["reviewer"]),
                       "label": verdict_word(row["label"], where), "at": str(row.get("at", "")),
                       "note": str(row.get("note", ""))})
    return labels
