"""Assertions on a case's trajectory: which tools ran, in what order, in how many steps.

Each failure shows the trajectory that was recorded. Each check is recorded
as a score of the case (``tool_called``, ``trajectory``, ``steps``), so gates
can count them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pytest_llmops.case import current_case, require
from pytest_llmops.tracing import view
from pytest_llmops.verdict import Score, Verdict, hide_check_frames

__tracebackhide__ = hide_check_frames

ORDERS = ("exact", "subset", "in_order")


def _spans(spans: Sequence[Any] | None) -> list[Any]:
    if spans is not None:
        return list(spans)
    record = current_case()
    if record is None:
        raise RuntimeError("trace assertions read the running case's spans: call them inside an eval case, "
                           "or pass spans=... explicitly")
    return list(record.spans)


def _arguments(span: Any) -> dict[str, Any] | None:
    text = view.attribute(span, "tool.parameters")
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def assert_tool_called(name: str, *, with_args: Mapping[str, Any] | None = None, times: int | None = None,
                       spans: Sequence[Any] | None = None) -> Score:
    """Pass when the tool ``name`` ran (``times`` times exactly, if given), with ``with_args``
    among its arguments when given (compared as JSON values)."""
    recorded = _spans(spans)
    calls = [span for span in recorded if view._get(span, "kind") == "tool" and view._get(span, "name") == name]
    wanted = None if with_args is None else json.loads(json.dumps(dict(with_args), default=repr))
    if wanted is not None:
        calls = [span for span in calls if _matches(_arguments(span), wanted)]
    found = len(calls)
    ok = found > 0 if times is None else found == times
    what = f"tool {name!r}" + (f" with {wanted}" if wanted is not None else "")
    expected = "at least once" if times is None else f"{times} time(s)"
    score = Score.measured(
        "tool_called", 1.0 if ok else 0.0, threshold=1.0,
        reason=f"{what} called {found} time(s), expected {expected}",
        details={"tool": name, "with_args": wanted, "found": found},
    )
    return require(score, trajectory="\n" + view.describe_steps(recorded))


def _matches(actual: dict[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return actual is not None and all(key in actual and actual[key] == value for key, value in wanted.items())


def assert_trajectory(expected: Sequence[str], *, order: Literal["exact", "subset", "in_order"] = "exact",
                      kinds: Sequence[str] = ("tool",), spans: Sequence[Any] | None = None) -> Score:
    """Compare the names of the case's spans of ``kinds`` (tools, by default) with ``expected``.

    ``exact``: the same steps in the same order; ``in_order``: ``expected`` appears
    in that order, other steps may come between; ``subset``: each expected step
    ran (as many times as listed), in any order.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    recorded = _spans(spans)
    actual = view.trajectory(recorded, kinds)
    wanted = list(expected)
    if order == "exact":
        ok = actual == wanted
    elif order == "in_order":
        remaining = iter(actual)
        ok = all(any(step == name for name in remaining) for step in wanted)
    else:
        ok = all(actual.count(step) >= wanted.count(step) for step in set(wanted))
    score = Score.measured(
        "trajectory", 1.0 if ok else 0.0, threshold=1.0,
        reason=f"trajectory ({order}) expected {wanted}, got {actual}",
        details={"order": order, "expected": wanted, "actual": actual},
    )
    return require(score, trajectory="\n" + view.describe_steps(recorded))


def assert_steps(*, max: int | None = None, min: int | None = None, spans: Sequence[Any] | None = None) -> Score:  # noqa: A002
    """Bound the number of app steps (tool, retriever and model-under-test spans; judge calls not counted)."""
    if max is None and min is None:
        raise ValueError("assert_steps needs max=N, min=N or both")
    recorded = _spans(spans)
    count = len(view.steps(recorded))
    ok = (max is None or count <= max) and (min is None or count >= min)
    bounds = " and ".join(part for part in (f"at least {min}" if min is not None else "",
                                            f"at most {max}" if max is not None else "") if part)
    # Both bounds decide the verdict; the threshold shown is the upper one when there is one.
    score = Score(
        name="steps", value=float(count), verdict=Verdict.PASS if ok else Verdict.FAIL,
        threshold=float(max if max is not None else min), higher_is_better=max is None,  # type: ignore[arg-type]
        reason=f"{count} steps, expected {bounds}",
    )
    return require(score, trajectory="\n" + view.describe_steps(recorded))
