"""Gate expressions, parsed once at the boundary into typed checks.

Grammar (spaces allowed between parts)::

    gate   := [ "[" scope "]" ] metric op number [unit]
    scope  := ("suite" | "test" | "marker") "=" text
            | "matrix" "=" name { "," axis "=" value }     axis: model, prompt, temperature, shots, cell
    metric := name ("." name)*
    op     := ">=" | "<=" | ">" | "<" | "=="
    unit   := "s" | "ms" | "%" | "usd"        ("$" may also lead the number)

Metrics:

* ``pass_rate``, ``pass_rate.lower``, ``pass_rate.upper`` - passed / (passed + failed)
  over eval cases, with the Wilson interval bounds; unmeasured, skipped and
  xfailed cases are not counted in it.
* ``unmeasured_rate`` (``.lower`` / ``.upper``) - unmeasured / all measured-or-unmeasured cases.
* ``latency.STAT``, ``ttft.STAT``, ``ms_per_token.STAT`` - calls of the model under test;
  ``judge.latency.STAT`` and ``judge.ttft.STAT`` for the judge.
* ``tokens.in.STAT``, ``tokens.out.STAT``, ``tokens.total.STAT`` - per call of the model under test.
* ``cost.total`` (all calls), ``cost.mean`` / ``cost.max`` (per case); ``calls.total``.
* ``robust.asr.lower`` / ``.upper`` / ``.value`` (and ``robust.asr.STRATEGY.upper``...) - attack
  success rate of ``llm_robust`` tests: broken / distinct examples pooled over the cases in scope,
  with the Wilson interval bounds.
* ``best.METRIC`` (with a ``[matrix=NAME]`` scope) - METRIC over the cases of the matrix's best cell
  (highest Wilson lower bound of its pass rate), e.g. ``[matrix=qa] best.pass_rate.lower>=0.9``.
* ``steps.STAT`` - app steps per case (tool, retriever and model-under-test spans).
* ``span[kind=K, name=N].latency.STAT`` - durations of the spans that match the filter.
* ``SCORE.STAT`` - any recorded score by name (``rougeL.p10``, ``faithfulness.mean``);
  ``SCORE.pass_rate`` is the share of its measured values that met their own threshold, and
  ``SCORE.pass_rate.lower`` / ``.upper`` the bounds of its Wilson interval.

STAT is one of ``mean``, ``median``, ``min``, ``max``, ``std``, ``count``, ``sum`` or ``pNN``
(a percentile, e.g. ``p95``).

A gate no run could pass is refused like a malformed one: an empty gate, a
threshold that is not finite, a rate bound past 0 or 1 (``pass_rate.lower>1``),
or a negative bound on a figure that is never negative (``latency.p95<=-2s``).
Standard library only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

EXAMPLE = "latency.p95<=2s"
EXAMPLES = ("pass_rate.lower>=0.9", "faithfulness.mean>=0.85", "rougeL.p10>=0.3", "latency.p95<=2s",
            "[suite=evalsuites/rag_qa] recall_at_5.mean>=0.8", "cost.total<=1.50")

OPERATORS = (">=", "<=", "==", ">", "<")
SCOPE_KINDS = ("suite", "test", "marker", "matrix")
#: What a ``[matrix=NAME, axis=value]`` scope may filter the cells on.
MATRIX_FILTERS = ("model", "prompt", "temperature", "shots", "cell")
STATISTICS = ("mean", "median", "min", "max", "std", "count", "sum")
RATE_STATISTICS = ("value", "lower", "upper")
TIME_METRICS = ("latency", "ttft", "judge.latency", "judge.ttft")
TOKEN_METRICS = ("tokens.in", "tokens.out", "tokens.total")

_SCOPE = re.compile(r"\s*\[\s*(?P<kind>[A-Za-z_]+)\s*=\s*(?P<value>[^\]]*?)\s*\]\s*")
_METRIC = re.compile(r"\s*(?P<metric>[A-Za-z_][\w\-@]*(?:\.[A-Za-z_][\w\-@]*)*)\s*")
_OP = re.compile(r"(>=|<=|==|>|<)\s*")
_NUMBER = re.compile(r"(?P<dollar>\$)?\s*(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[A-Za-z%/]*)\s*$")
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
_SPAN = re.compile(r"\s*span\s*\[(?P<filter>[^\]]*)\]\s*\.\s*(?P<field>[A-Za-z_]+)\s*\.\s*(?P<stat>[A-Za-z0-9_.]+?)\s*(?=[<>=])")
SPAN_KEYS = ("kind", "name")


class GateSyntaxError(ValueError):
    """A gate expression that does not parse; the message points at the spot."""

    def __init__(self, expression: str, position: int, problem: str, source: str = "") -> None:
        where = f"{source}: " if source else ""
        pointer = " " * position + "^"
        super().__init__(
            f"{where}bad gate {expression!r}: {problem}\n    {expression}\n    {pointer}\n"
            f"  valid examples: {', '.join(EXAMPLES)}"
        )
        self.expression = expression
        self.position = position
        self.problem = problem


@dataclass(frozen=True)
class Gate:
    """One parsed gate: which figure, over which cases, compared how."""

    expression: str
    family: str  # pass_rate | unmeasured_rate | asr | time | ms_per_token | tokens | cost | calls | score
    metric: str  # e.g. "latency", "tokens.out", "faithfulness"
    statistic: str  # e.g. "p95", "mean", "lower", "total"
    op: str
    threshold: float
    unit: str = ""
    scope_kind: str | None = None
    scope_value: str | None = None
    source: str = ""
    #: ``[matrix=qa, model=X]``: the cells' axis values the cases must have.
    filters: tuple[tuple[str, str], ...] = ()
    #: ``best.METRIC``: measured on the matrix's best cell only.
    best: bool = False
    #: For ``span[kind=tool, name=search].latency.p95``: the (key, value) pairs a span must match.
    span_filter: tuple[tuple[str, str], ...] = ()
    #: The folder of the suite whose conftest declared the gate: it looks at no case outside it,
    #: whatever its own scope (a ``[test=NAME]`` gate of one suite ignores same-named tests of another).
    within: str | None = None

    @property
    def scope(self) -> str | None:
        if not self.scope_kind:
            return None
        extra = "".join(f", {key}={value}" for key, value in self.filters)
        return f"{self.scope_kind}={self.scope_value}{extra}"

    @property
    def name(self) -> str:
        """The measured figure, e.g. ``latency.p95`` or ``pass_rate.lower``."""
        name = self.metric if self.statistic == "value" else f"{self.metric}.{self.statistic}"
        return f"best.{name}" if self.best else name

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the gate."""
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        if self.op == "<":
            return value < self.threshold
        return value == self.threshold


def parse_gate(expression: str, *, source: str = "") -> Gate:
    """Parse one gate expression; a bad one raises ``GateSyntaxError`` showing where."""
    text = expression
    position = 0
    scope_kind = scope_value = None
    filters: tuple[tuple[str, str], ...] = ()

    def fail(at: int, problem: str) -> GateSyntaxError:
        return GateSyntaxError(expression, at, problem, source)

    if not text.strip():
        raise fail(0, "the gate is empty")
    if text.lstrip().startswith("["):
        match = _SCOPE.match(text)
        if match is None:
            raise fail(text.index("["), "a scope is written [suite=PATH], [test=NAME] or [marker=NAME]")
        scope_kind, scope_value = match.group("kind"), match.group("value")
        if scope_kind not in SCOPE_KINDS:
            raise fail(match.start("kind"), f"unknown scope {scope_kind!r}; use one of {', '.join(SCOPE_KINDS)}")
        if not scope_value:
            raise fail(match.start("value"), f"the {scope_kind} scope needs a value")
        if scope_kind == "matrix":
            scope_value, filters = _matrix_scope(scope_value, lambda problem: fail(match.start("value"), problem))
        position = match.end()

    span_match = _SPAN.match(text, position)
    if span_match is not None:
        return _span_gate(expression, text, span_match, scope_kind, scope_value, source, fail)
    match = _METRIC.match(text, position)
    if match is None or not match.group("metric"):
        raise fail(position, "expected a metric name such as pass_rate, latency.p95 or rougeL.mean")
    metric_text = match.group("metric")
    metric_at = match.start("metric")
    position = match.end()
    best = metric_text.startswith("best.")
    if best:
        if scope_kind != "matrix":
            raise fail(metric_at, "best.METRIC measures a matrix's best cell: scope it, e.g. [matrix=qa] best.pass_rate.lower>=0.9")
        metric_text = metric_text[len("best."):]
        metric_at += len("best.")

    op_match = _OP.match(text, position)
    if op_match is None:
        raise fail(position, f"expected a comparison ({', '.join(OPERATORS)}) after {metric_text!r}")
    op = op_match.group(1)
    position = op_match.end()

    number_match = _NUMBER.match(text, position)
    if number_match is None:
        raise fail(position, "expected a number, optionally with a unit (s, ms, %, usd)")
    raw = float(number_match.group("number"))
    unit_text = number_match.group("unit").lower()
    if number_match.group("dollar"):
        if unit_text:
            raise fail(number_match.start("unit"), "write either $1.50 or 1.50usd, not both")
        unit_text = "usd"

    family, metric, statistic = _classify(metric_text, lambda problem: fail(metric_at, problem))
    number_at = number_match.start("number")
    if not math.isfinite(raw):
        raise fail(number_at, f"the threshold must be a finite number, got {raw:g}")
    # Point at the unit when there is one (the usual mistake), else at the number.
    value_at = number_match.start("unit") if number_match.group("unit") else number_at
    rate = family in ("pass_rate", "unmeasured_rate", "asr") or statistic.startswith("pass_rate")
    threshold, unit = _convert_threshold(family, raw, unit_text, rate, lambda problem: fail(value_at, problem))
    name = metric if statistic == "value" else f"{metric}.{statistic}"
    impossible = _never_passes(family, statistic, rate, op, threshold)
    if impossible:
        raise fail(number_at, f"{impossible.format(name=name)}, so {op} {number_match.group('number')} can never pass")
    return Gate(
        expression=expression.strip(),
        family=family,
        metric=metric,
        statistic=statistic,
        op=op,
        threshold=threshold,
        unit=unit,
        scope_kind=scope_kind,
        scope_value=scope_value,
        source=source,
        filters=filters,
        best=best,
    )


def _matrix_scope(value: str, fail) -> tuple[str, tuple[tuple[str, str], ...]]:  # type: ignore[no-untyped-def]
    """``"qa, model=gpt-4o-mini, shots=3"`` -> ("qa", (("model", "gpt-4o-mini"), ("shots", "3")))."""
    name, *parts = [part.strip() for part in value.split(",")]
    if not name or "=" in name:
        raise fail("a matrix scope starts with the matrix name: [matrix=qa] or [matrix=qa, model=gpt-4o-mini]")
    filters = []
    for part in parts:
        key, sep, wanted = (piece.strip() for piece in part.partition("="))
        if not sep or not wanted:
            raise fail(f"{part!r} is not axis=value; e.g. [matrix={name}, temperature=0.7]")
        if key not in MATRIX_FILTERS:
            raise fail(f"unknown matrix axis {key!r}; use one of {', '.join(MATRIX_FILTERS)}")
        filters.append((key, wanted))
    return name, tuple(filters)


def _span_gate(expression: str, text: str, match: re.Match[str], scope_kind: str | None, scope_value: str | None,
               source: str, fail) -> Gate:  # type: ignore[no-untyped-def]
    """``span[kind=tool, name=search].latency.p95<=1s``: the durations of the matching spans."""
    pairs = []
    for part in (p.strip() for p in match.group("filter").split(",")):
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key not in SPAN_KEYS or not value:
            raise fail(match.start("filter"), f"a span filter is key=value pairs with keys {', '.join(SPAN_KEYS)}, "
                                              f"e.g. span[kind=tool, name=search], got {part!r}")
        pairs.append((key, value))
    if not pairs:
        raise fail(match.start("filter"), "a span filter needs kind=... or name=..., e.g. span[kind=tool, name=search]")
    if match.group("field") not in ("latency", "duration"):
        raise fail(match.start("field"), f"a span gate measures latency, got {match.group('field')!r}")
    statistic = _check_statistic(match.group("stat"), "span[...].latency", lambda problem: fail(match.start("stat"), problem))
    op_match = _OP.match(text, match.end())
    assert op_match is not None  # the pattern ends where an operator starts
    number = _NUMBER.match(text, op_match.end())
    if number is None:
        raise fail(op_match.end(), "expected a number, optionally with a unit (s, ms)")
    threshold, unit = _convert_threshold("time", float(number.group("number")), number.group("unit").lower(), False,
                                         lambda problem: fail(number.start("unit"), problem))
    impossible = _never_passes("time", statistic, False, op_match.group(1), threshold)
    if impossible:
        raise fail(number.start("number"), f"{impossible.format(name='a span latency')}, so this can never pass")
    label = ", ".join(f"{k}={v}" for k, v in pairs)
    return Gate(expression=expression.strip(), family="span", metric=f"span[{label}].latency", statistic=statistic,
                op=op_match.group(1), threshold=threshold, unit=unit, scope_kind=scope_kind, scope_value=scope_value,
                source=source, span_filter=tuple(pairs))


def _check_statistic(statistic: str, metric: str, fail) -> str:  # type: ignore[no-untyped-def]
    if statistic in STATISTICS or _PERCENTILE.match(statistic):
        return statistic
    raise fail(
        f"{metric!r} needs a statistic: one of {', '.join(STATISTICS)} or a percentile such as p95 "
        f"(e.g. {metric}.p95), got {statistic!r}"
    )


def _classify(metric_text: str, fail) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    parts = metric_text.split(".")
    head = parts[0]
    if head in ("pass_rate", "unmeasured_rate"):
        statistic = parts[1] if len(parts) == 2 else "value"
        if len(parts) > 2 or statistic not in RATE_STATISTICS:
            raise fail(f"{head} takes no statistic, or .lower / .upper for the Wilson interval bounds")
        return head, head, statistic
    if metric_text.startswith("robust.asr") and len(parts) >= 3 and parts[1] == "asr" and parts[-1] in RATE_STATISTICS:
        return "asr", ".".join(parts[:-1]), parts[-1]
    for family, names in (("time", TIME_METRICS), ("tokens", TOKEN_METRICS), ("ms_per_token", ("ms_per_token",))):
        for name in names:
            if metric_text == name:
                raise fail(f"{name!r} needs a statistic, e.g. {name}.p95 or {name}.mean")
            if metric_text.startswith(name + ".") and metric_text.count(".") == name.count(".") + 1:
                return family, name, _check_statistic(parts[-1], name, fail)
    if head == "tokens":
        raise fail("tokens gates are tokens.in.STAT, tokens.out.STAT or tokens.total.STAT")
    if head == "cost":
        if len(parts) != 2 or parts[1] not in ("total", "mean", "max"):
            raise fail("cost gates are cost.total (the run), cost.mean or cost.max (per case)")
        return "cost", "cost", parts[1]
    if head == "steps":
        if len(parts) != 2:
            raise fail("the step-count gate is steps.STAT, e.g. steps.mean or steps.max (app steps per case)")
        return "steps", "steps", _check_statistic(parts[1], "steps", fail)
    if head == "calls":
        if metric_text != "calls.total":
            raise fail("the call-count gate is calls.total")
        return "calls", "calls", "total"
    if len(parts) >= 3 and parts[-2] == "pass_rate" and parts[-1] in ("lower", "upper"):
        return "score", ".".join(parts[:-2]), f"pass_rate.{parts[-1]}"
    if len(parts) < 2:
        raise fail(f"a score gate needs a statistic, e.g. {metric_text}.mean, {metric_text}.p10 or {metric_text}.pass_rate")
    statistic = parts[-1]
    name = ".".join(parts[:-1])
    if statistic != "pass_rate":
        statistic = _check_statistic(statistic, name, fail)
    return "score", name, statistic


#: Figures that are never negative: times, token counts, costs, call counts, and these statistics of any score.
_NON_NEGATIVE_FAMILIES = ("time", "ms_per_token", "tokens", "cost", "calls", "steps", "span")
_NON_NEGATIVE_STATISTICS = ("count", "std")


def _never_passes(family: str, statistic: str, rate: bool, op: str, threshold: float) -> str | None:
    """Why no run could meet ``op threshold``, or None. A gate that cannot pass is a typo, not a policy."""
    if rate:
        # The rate's own range is checked with its unit; what is left is a strict bound at an end.
        if op == ">" and threshold >= 1:
            return "a rate is at most 1"
        if op == "<" and threshold <= 0:
            return "a rate is at least 0"
        return None
    if family in _NON_NEGATIVE_FAMILIES or statistic in _NON_NEGATIVE_STATISTICS:
        if (op == "<" and threshold <= 0) or (op in ("<=", "==") and threshold < 0):
            return "{name} is never negative"
    return None


def _convert_threshold(family: str, raw: float, unit: str, rate: bool, fail) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """The threshold in the unit the figures are computed in (seconds, USD, fractions)."""
    if family == "time":
        if unit in ("", "s"):
            return raw, "s"
        if unit == "ms":
            return raw / 1000, "s"
        raise fail(f"a time is given in s or ms, got {unit!r}")
    if family == "ms_per_token":
        if unit in ("", "ms"):
            return raw, "ms/token"
        raise fail(f"ms_per_token is in milliseconds, got {unit!r}")
    if family == "cost":
        if unit in ("", "usd"):
            return raw, "usd"
        raise fail(f"a cost is given in USD ($1.50 or 1.50usd), got {unit!r}")
    if rate or (family == "score" and unit == "%"):
        if unit == "%":
            raw /= 100
        elif unit:
            raise fail(f"a rate is a fraction (0.95) or a percentage (95%), got {unit!r}")
        if rate and not 0 <= raw <= 1:
            raise fail(f"a rate is between 0 and 1 (or 0% and 100%), got {raw:g}")
        return raw, ""
    if family == "tokens":
        if unit in ("", "tokens"):
            return raw, "tokens"
        raise fail(f"a token count takes no unit, got {unit!r}")
    if unit:
        raise fail(f"this gate takes a plain number, got unit {unit!r}")
    return raw, ""


def parse_gates(expressions: list[str], *, source: str = "") -> list[Gate]:
    """Parse several gates; the first bad one raises (an empty one too: it is never "no gate")."""
    return [parse_gate(expression, source=source) for expression in expressions]
