"""The waterfall of one case's span tree, for the HTML report.

One row per span, depth-first in start order, indented by depth, with a bar
placed on the case's own time line. Plain HTML and CSS, no script.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the renderers read results without importing pydantic
    from pytest_llmops.results.models import SpanResult

#: Most rows drawn per case; a longer trace says how many were left out.
MAX_ROWS = 200


def _ordered(spans: Sequence[SpanResult]) -> list[tuple[int, SpanResult]]:
    children: dict[str | None, list[SpanResult]] = {}
    known = {span.span_id for span in spans}
    for span in spans:
        # A captured span whose parent was not recorded hangs from the root.
        parent = span.parent_id if span.parent_id in known else None
        children.setdefault(parent, []).append(span)
    rows: list[tuple[int, SpanResult]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start):
            rows.append((depth, span))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return rows


def waterfall(spans: Sequence[SpanResult]) -> str:
    """A table of the spans with bars on the case's time line (empty when nothing was traced)."""
    if not spans:
        return ""
    start = min(span.start for span in spans)
    end = max((span.end or span.start) for span in spans)
    total = max(end - start, 1e-9)
    rows = []
    ordered = _ordered(spans)
    for depth, span in ordered[:MAX_ROWS]:
        left = (span.start - start) / total * 100
        width = max(((span.end or span.start) - span.start) / total * 100, 0.3)
        duration = "" if span.duration_s is None else f"{span.duration_s * 1000:.1f} ms"
        flags = " cache hit" if span.attributes.get("llmops.cache_hit") else ""
        bad = " bad" if span.status == "error" else ""
        title = html.escape(span.error or f"{span.kind} {span.name}", quote=True)
        rows.append(
            f"<tr><td style='padding-left:{depth * 14 + 4}px'><code>{html.escape(span.name)}</code></td>"
            f"<td>{html.escape(span.kind)}{html.escape(flags)}</td><td class='num'>{duration}</td>"
            f"<td class='lane'><div class='span-bar{bad}' title='{title}' "
            f"style='margin-left:{left:.2f}%;width:{min(width, 100 - left):.2f}%'></div></td></tr>"
        )
    more = f"<p class='note'>{len(ordered) - MAX_ROWS} more spans not drawn.</p>" if len(ordered) > MAX_ROWS else ""
    return (
        "<h3 style='margin-top:10px'>Trace</h3><table class='waterfall'><caption>Spans of the case on its time line"
        "</caption><thead><tr><th>step</th><th>kind</th><th>duration</th><th>time line</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>" + more
    )
