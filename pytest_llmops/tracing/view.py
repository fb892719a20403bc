"""Reading a case's span tree: its steps, its trajectory, its slowest steps.

Works on live ``Span`` objects and on the plain dicts of the results file
alike, so assertions, gates and reports share one definition of a "step".
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Kinds that are one action of the app (a model call, a tool, a retrieval); chains and agents group them.
STEP_KINDS = ("llm", "tool", "retriever")
#: How many of the slowest steps a failing case shows.
SLOWEST = 5


def _get(span: Any, name: str) -> Any:
    return span.get(name) if isinstance(span, Mapping) else getattr(span, name)


def attribute(span: Any, key: str) -> Any:
    return (_get(span, "attributes") or {}).get(key)


def is_step(span: Any) -> bool:
    """An app step: a tool, a retrieval or a call of the model under test (judge calls are the eval's, not the app's)."""
    kind = _get(span, "kind")
    if kind not in STEP_KINDS:
        return False
    return not (kind == "llm" and attribute(span, "llmops.role") == "judge")


def steps(spans: Sequence[Any]) -> list[Any]:
    """The case's app steps, in the order they started."""
    return sorted((span for span in spans if is_step(span)), key=lambda span: _get(span, "start"))


def trajectory(spans: Sequence[Any], kinds: Sequence[str] = ("tool",)) -> list[str]:
    """Names of the spans of ``kinds`` in the order they started: by default the tools called."""
    chosen = [span for span in spans if _get(span, "kind") in kinds]
    return [_get(span, "name") for span in sorted(chosen, key=lambda span: _get(span, "start"))]


def _duration(span: Any) -> float | None:
    if isinstance(span, Mapping):
        return span.get("duration_s")
    return span.duration_s


def describe_steps(spans: Sequence[Any]) -> str:
    """The trajectory as an assertion message shows it: one numbered line per step."""
    chosen = [span for span in spans if _get(span, "kind") not in ("case", "embedding")]
    chosen.sort(key=lambda span: _get(span, "start"))
    if not chosen:
        return "  (no steps were recorded)"
    depth = _depths(spans)
    lines = []
    for index, span in enumerate(chosen, 1):
        indent = "  " * max(0, depth.get(_get(span, "span_id"), 1) - 1)
        args = attribute(span, "tool.parameters")
        suffix = f" {args}" if args and _get(span, "kind") == "tool" else ""
        status = " [error]" if _get(span, "status") == "error" else ""
        lines.append(f"  {index}. {indent}{_get(span, 'kind')}: {_get(span, 'name')}{suffix}{status}")
    return "\n".join(lines)


def _depths(spans: Sequence[Any]) -> dict[str, int]:
    parents = {_get(span, "span_id"): _get(span, "parent_id") for span in spans}
    depths: dict[str, int] = {}
    for span_id in parents:
        depth, current = 0, span_id
        while parents.get(current) is not None and depth < 64:
            current = parents[current]
            depth += 1
        depths[span_id] = depth
    return depths


def slowest_steps(spans: Sequence[Any], limit: int = SLOWEST) -> str:
    """The slowest spans below the root, one line each (shown under a failing case)."""
    timed = [span for span in spans if _get(span, "kind") != "case" and _duration(span) is not None]
    if not timed:
        return ""
    timed.sort(key=lambda span: _duration(span), reverse=True)
    root = next((span for span in spans if _get(span, "kind") == "case"), None)
    total = _duration(root) if root is not None else None
    if root is not None and total is None:
        # The case is still open while its failure is reported: measure it up to its last step's end.
        total = max(_get(span, "end") or 0.0 for span in timed) - _get(root, "start")
    lines = []
    for span in timed[:limit]:
        duration = _duration(span) or 0.0
        share = f" ({duration / total:.0%} of the case)" if total else ""
        cached = " cache hit" if attribute(span, "llmops.cache_hit") else ""
        status = " [error]" if _get(span, "status") == "error" else ""
        lines.append(f"{duration * 1000:9.1f} ms  {_get(span, 'kind'):<9} {_get(span, 'name')}{share}{cached}{status}")
    return "\n".join(lines)
