"""Split a text into scored units (lines and sentences) with their character offsets.

Detectors score long texts piece by piece, so that one toxic sentence or one
injected instruction is not diluted by the paragraphs around it, and so that a
finding can point at where it is. Standard library only.
"""

from __future__ import annotations

import re

# Line breaks, table cell bars, and sentence ends followed by space.
_BREAK = re.compile(r"\s*(?:\n+|\|+|(?<=[.!?\u3002\uff01\uff1f])\s+)\s*")
_SPACE = re.compile(r"\s")


def segments(text: str, max_chars: int = 400, min_chars: int = 3) -> list[tuple[int, int]]:
    """``(start, end)`` of each line or sentence of ``text``; long ones cut at spaces near ``max_chars``.

    Pieces shorter than ``min_chars`` (stray bullets, "|") are dropped. A text
    with no break gives one segment (or several windows if it is long).
    """
    if max_chars < 20:
        raise ValueError(f"max_chars={max_chars} is too small to hold a sentence; use 20 or more")
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BREAK.finditer(text):
        _add(text, start, match.start(), max_chars, min_chars, spans)
        start = match.end()
    _add(text, start, len(text), max_chars, min_chars, spans)
    return spans


def _add(text: str, start: int, end: int, max_chars: int, min_chars: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        cut = cut if cut > start else start + max_chars
        spans.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end - start >= min_chars:
        spans.append((start, end))
