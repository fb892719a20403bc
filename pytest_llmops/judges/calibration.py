"""Calibrating a judge against human labels, and refusing judges that are not calibrated.

``calibrate`` runs one judge metric over a labelled JSONL file, one object a
line::

    {"input": "question", "output": "the answer judged", "context": "...", "label": "pass"}

(``label``: pass/fail, true/false, yes/no or 1/0; ``context`` is needed by
``faithfulness``; ``id`` is optional). It reports accuracy, Cohen's kappa and
the confusion matrix of the judge's verdicts against the labels, and how
often the judge agrees with itself when each item is asked again with a
different ``seed`` (which also bypasses the call cache). The report is saved
as JSON under ``.llmops/calibration/``, keyed by the judge signature: metric,
judge model, template name/version/hash (and, for rubrics, the criteria and
threshold). ``require_calibrated`` reads it back and ends a check unmeasured
when the calibration is missing or below the bar.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmops._jsonl import json_objects
from pytest_llmops.judges.engine import judge_name
from pytest_llmops.judges.templates import JudgeTemplate, resolve_template
from pytest_llmops.verdict import Score, UnmeasuredError, Verdict

__all__ = [
    "METRICS",
    "CalibrationError",
    "CalibrationItem",
    "CalibrationReport",
    "calibrate",
    "calibration_key",
    "calibration_path",
    "load_labelled",
    "load_report",
    "require_calibrated",
]

#: Metrics that can be calibrated, and the judge templates each one uses.
METRICS: dict[str, tuple[str, ...]] = {
    "faithfulness": ("claims", "faithfulness"),
    "rubric": ("rubric",),
    "answer_relevancy": ("answer_relevancy",),
}
LABELS = ("pass", "fail")
_LABEL_WORDS = {
    "pass": "pass",
    "fail": "fail",
    "true": "pass",
    "false": "fail",
    "yes": "pass",
    "no": "fail",
    "1": "pass",
    "0": "fail",
    "good": "pass",
    "bad": "fail",
}
CONCURRENCY = 8


class CalibrationError(ValueError):
    """Bad calibration input (the message names the file, line and fix) or a missing library."""


@dataclass(frozen=True)
class CalibrationItem:
    """One labelled example: what was asked, the output judged, its context and the human label."""

    input: str
    output: str
    label: str
    context: Any = ""
    id: str = ""
    line: int = 0


@dataclass
class CalibrationReport:
    """How well a judge agrees with human labels, and with itself."""

    key: str
    metric: str
    judge_model: str
    templates: list[dict[str, str]]
    n_items: int
    n_measured: int
    accuracy: float | None
    kappa: float | None
    confusion_matrix: dict[str, dict[str, int]]
    repeat_agreement: float | None
    repeat_kappa: float | None
    n_unmeasured: int
    unmeasured_reasons: list[str] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    data: str = ""
    data_sha256: str = ""
    created_at: float = 0.0
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few lines for humans."""

        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        matrix = self.confusion_matrix
        return "\n".join(
            [
                f"judge {self.judge_model} on {self.metric} ({', '.join(t['name'] + '@' + t['version'] for t in self.templates)})",
                f"items: {self.n_items}, measured: {self.n_measured}, unmeasured: {self.n_unmeasured}",
                f"accuracy: {fmt(self.accuracy)}  Cohen's kappa: {fmt(self.kappa)}",
                "confusion (rows human, columns judge): "
                + "; ".join(f"{h}: " + ", ".join(f"{j}={matrix[h][j]}" for j in LABELS) for h in LABELS),
                f"repeat agreement: {fmt(self.repeat_agreement)}  repeat kappa: {fmt(self.repeat_kappa)}",
            ]
        )


# -- input ---------------------------------------------------------------------


def _label(value: Any, where: str) -> str:
    word = str(value).strip().lower() if not isinstance(value, bool) else ("true" if value else "false")
    if word not in _LABEL_WORDS:
        raise CalibrationError(
            f'{where}: label {value!r} is not a verdict; use "pass" or "fail" (or true/false, yes/no, 1/0)'
        )
    return _LABEL_WORDS[word]


def load_labelled(path: str | Path, *, metric: str = "rubric") -> list[CalibrationItem]:
    """Read a labelled JSONL file; every problem names the file and line and how to fix it."""
    path = Path(path)
    items = []
    for where, number, data in json_objects(path, CalibrationError, missing="file; pass a JSONL file of labelled examples",
                                       expected="a JSON object with input, output, label"):
        missing = [key for key in ("input", "output", "label") if key not in data]
        if metric == "faithfulness" and not data.get("context"):
            missing.append("context")
        if missing:
            raise CalibrationError(
                f"{where}: missing {', '.join(missing)}; each line needs input, output, label"
                + (" and context (for faithfulness)" if metric == "faithfulness" else "")
            )
        for key in ("input", "output"):
            if not isinstance(data[key], str):
                raise CalibrationError(f"{where}: {key} must be a string, got {type(data[key]).__name__}")
        items.append(
            CalibrationItem(
                input=data["input"],
                output=data["output"],
                label=_label(data["label"], where),
                context=data.get("context", ""),
                id=str(data.get("id", number)),
                line=number,
            )
        )
    if not items:
        raise CalibrationError(f"{path}: holds no examples; add one JSON object a line")
    return items


# -- keys and files --------------------------------------------------------------


def _templates_for(metric: str, template: JudgeTemplate | str | Path | None) -> list[JudgeTemplate]:
    if metric not in METRICS:
        raise CalibrationError(f"unknown metric {metric!r}; calibration supports: {', '.join(METRICS)}")
    kinds = METRICS[metric]
    # A replacement template replaces the metric's main (last) template.
    return [resolve_template(kind, template if kind == kinds[-1] else None) for kind in kinds]


def calibration_key(
    judge: Any,
    metric: str,
    *,
    template: JudgeTemplate | str | Path | None = None,
    criteria: str | None = None,
    threshold: float | None = None,
) -> str:
    """The judge signature a calibration is stored under: metric, judge model, templates (+ rubric settings)."""
    parts = [
        metric,
        f"judge:{judge_name(judge)}",
        *(f"template:{t.ref}" for t in _templates_for(metric, template)),
    ]
    if criteria is not None:
        parts.append("criteria:" + hashlib.sha256(criteria.encode()).hexdigest()[:12])
    if threshold is not None:
        parts.append(f"threshold:{threshold:g}")
    return "|".join(parts)


def _state_dir(state_dir: str | Path | None) -> Path:
    if state_dir is not None:
        return Path(state_dir)
    from pytest_llmops.statedir import configured_state_dir

    return configured_state_dir() or Path(".llmops")


def calibration_path(key: str, state_dir: str | Path | None = None) -> Path:
    """Where the calibration of ``key`` is stored: ``<state dir>/calibration/<sha256 prefix>.json``."""
    return _state_dir(state_dir) / "calibration" / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".json")


def load_report(key: str, state_dir: str | Path | None = None) -> CalibrationReport | None:
    """The stored calibration for ``key``, or ``None`` when there is none."""
    path = calibration_path(key, state_dir)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("key") != key:  # a hash-prefix collision, or a hand-edited file
        return None
    return CalibrationReport(**data)


# -- running ------------------------------------------------------------------------


async def _score(
    judge: Any,
    metric: str,
    item: CalibrationItem,
    options: Mapping[str, Any],
    params: Mapping[str, Any] | None,
) -> Score:
    if metric == "faithfulness":
        from pytest_llmops.judges.rag import faithfulness

        return await faithfulness(
            item.output,
            context=item.context,
            input=item.input,
            judge=judge,
            params=params,
            **options,
        )
    if metric == "answer_relevancy":
        from pytest_llmops.judges.rag import answer_relevancy

        return await answer_relevancy(item.output, input=item.input, judge=judge, params=params, **options)
    from pytest_llmops.judges._rubric import rubric

    return await rubric(
        item.output,
        input=item.input,
        context=item.context or "",
        judge=judge,
        params=params,
        **options,
    )


def _verdict(score: Score) -> str | None:
    return None if score.verdict is Verdict.UNMEASURED else score.verdict.value


def _kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        raise CalibrationError(
            "calibration needs scikit-learn for Cohen's kappa: pip install scikit-learn (or pytest-llmops[drift])"
        ) from None
    if not a:
        return None
    if len(set(a) | set(b)) < 2:
        return 1.0  # every label the same on both sides: complete (if uninformative) agreement
    value = float(cohen_kappa_score(list(a), list(b), labels=list(LABELS)))
    return None if math.isnan(value) else round(value, 6)


def _matrix(human: Sequence[str], judged: Sequence[str]) -> dict[str, dict[str, int]]:
    from sklearn.metrics import confusion_matrix

    table = confusion_matrix(list(human), list(judged), labels=list(LABELS)) if human else [[0, 0], [0, 0]]
    return {h: {j: int(table[i][k]) for k, j in enumerate(LABELS)} for i, h in enumerate(LABELS)}


async def calibrate(
    judge: Any,
    metric: str,
    data: str | Path | Sequence[CalibrationItem],
    *,
    criteria: str | None = None,
    threshold: float | None = None,
    template: JudgeTemplate | str | Path | None = None,
    repeats: int = 2,
    state_dir: str | Path | None = None,
    save: bool = True,
) -> CalibrationReport:
    """Run ``metric`` with ``judge`` over labelled ``data`` and report agreement; saved unless ``save=False``.

    ``repeats`` (1 or 2): with 2, every item is asked again with ``seed=1``
    (a different request, so not answered from the cache) to measure the
    judge's agreement with itself. ``criteria`` is required for ``rubric``.
    """
    if repeats not in (1, 2):
        raise CalibrationError(f"repeats must be 1 or 2, got {repeats}")
    if metric == "rubric" and not criteria:
        raise CalibrationError("calibrating a rubric needs its criteria (--criteria / criteria=...)")
    templates = _templates_for(metric, template)
    items = list(data) if not isinstance(data, (str, Path)) else load_labelled(data, metric=metric)
    options: dict[str, Any] = {}
    if template is not None:
        options["template"] = templates[-1]
    if criteria is not None:
        options["criteria"] = criteria
    if threshold is not None:
        options["threshold"] = threshold
    key = calibration_key(judge, metric, template=templates[-1], criteria=criteria, threshold=threshold)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(item: CalibrationItem, params: Mapping[str, Any] | None) -> Score:
        async with limit:
            return await _score(judge, metric, item, options, params)

    first = await asyncio.gather(*(one(item, None) for item in items))
    second = await asyncio.gather(*(one(item, {"seed": 1}) for item in items)) if repeats == 2 else []

    human, judged, reasons, disagreements = [], [], [], []
    for item, score in zip(items, first):
        verdict = _verdict(score)
        if verdict is None:
            reasons.append(f"line {item.line}: {score.reason[:200]}")
            continue
        human.append(item.label)
        judged.append(verdict)
        if verdict != item.label:
            disagreements.append(
                {
                    "id": item.id,
                    "line": item.line,
                    "human": item.label,
                    "judge": verdict,
                    "value": score.value,
                    "reason": score.reason[:300],
                }
            )
    pairs = [(_verdict(a), _verdict(b)) for a, b in zip(first, second)]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    report = CalibrationReport(
        key=key,
        metric=metric,
        judge_model=judge_name(judge),
        templates=[t.describe() for t in templates],
        n_items=len(items),
        n_measured=len(human),
        accuracy=round(sum(h == j for h, j in zip(human, judged)) / len(human), 6) if human else None,
        kappa=_kappa(human, judged),
        confusion_matrix=_matrix(human, judged),
        repeat_agreement=round(sum(a == b for a, b in pairs) / len(pairs), 6) if pairs else None,
        repeat_kappa=_kappa([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None,
        n_unmeasured=len(reasons),
        unmeasured_reasons=reasons[:20],
        disagreements=disagreements[:50],
        data=str(data) if isinstance(data, (str, Path)) else "<items>",
        data_sha256=hashlib.sha256(Path(data).read_bytes()).hexdigest() if isinstance(data, (str, Path)) else "",
        created_at=time.time(),
    )
    if save:
        path = calibration_path(key, state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        report.path = str(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    return report


def require_calibrated(
    judge: Any,
    metric: str,
    *,
    min_kappa: float = 0.6,
    min_accuracy: float | None = None,
    template: JudgeTemplate | str | Path | None = None,
    criteria: str | None = None,
    threshold: float | None = None,
    state_dir: str | Path | None = None,
) -> CalibrationReport:
    """The judge's stored calibration for ``metric``; ``UnmeasuredError`` when missing or below the bar.

    Call it at the start of a test (or in a fixture) that relies on the
    judge: a judge whose agreement with human labels is unknown or too low
    cannot pass anything.
    """
    key = calibration_key(judge, metric, template=template, criteria=criteria, threshold=threshold)
    report = load_report(key, state_dir)
    how = (
        f"run `llmops calibrate LABELLED.jsonl --judge {judge_name(judge)} --metric {metric}"
        + (" --criteria '...'" if criteria else "")
        + "` (or the judge_calibration fixture) first"
    )
    if report is None:
        raise UnmeasuredError(
            f"judge {judge_name(judge)} has no calibration for {metric} with this template "
            f"(key {key!r}, looked in {calibration_path(key, state_dir)}); {how}"
        )
    if report.kappa is None or report.kappa < min_kappa:
        raise UnmeasuredError(
            f"judge {judge_name(judge)} is not calibrated well enough for {metric}: Cohen's kappa "
            f"{'n/a' if report.kappa is None else f'{report.kappa:.3f}'} < {min_kappa} over {report.n_measured} "
            f"labelled items ({report.path or calibration_path(key, state_dir)}); improve the template or judge and {how}"
        )
    if min_accuracy is not None and (report.accuracy is None or report.accuracy < min_accuracy):
        raise UnmeasuredError(
            f"judge {judge_name(judge)} is not accurate enough for {metric}: accuracy {report.accuracy} < "
            f"{min_accuracy}; {how}"
        )
    return report
