"""String checks: exact match, substring, regular expression, edit distance.

Exact, contains and regex are pass/fail checks whose value is 1.0 or 0.0
(contains with several needles: the fraction found). Edit distance is
rapidfuzz's Levenshtein distance (insertions, deletions and substitutions
cost 1), raw or normalised by the longer string's length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

from pytest_llmops.metrics._deps import require, signature
from pytest_llmops.metrics._inputs import as_text, check_choice, check_number, check_unit_interval
from pytest_llmops.verdict import Score


def normalize_text(
    text: str, *, ignore_case: bool = False, collapse_whitespace: bool = False, strip: bool = True
) -> str:
    """``text`` after the normalisations the string checks offer.

    Unicode is always put in NFC form, so composed and decomposed accents compare equal.
    """
    text = unicodedata.normalize("NFC", text)
    if collapse_whitespace:
        text = " ".join(text.split())
    elif strip:
        text = text.strip()
    if ignore_case:
        text = text.casefold()
    return text


def _preview(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def exact_match(
    output: str,
    expected: str,
    *,
    ignore_case: bool = False,
    collapse_whitespace: bool = False,
    strip: bool = True,
) -> Score:
    """1.0 if ``output`` equals ``expected`` after the chosen normalisations, else 0.0.

    Leading and trailing whitespace is ignored by default (``strip``), since
    models often end with a newline.
    """
    output = as_text(output, "output")
    expected = as_text(expected, "expected")
    opts = {"ignore_case": ignore_case, "collapse_whitespace": collapse_whitespace, "strip": strip}
    a, b = normalize_text(output, **opts), normalize_text(expected, **opts)
    equal = a == b
    if equal:
        reason = "output equals the expected text"
    else:
        # Point at the first difference: long near-misses are otherwise hard to read.
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        got, want = _preview(a[at : at + 20]), _preview(b[at : at + 20])
        reason = f"first difference at character {at}: output has {got}, expected {want}"
    return Score.measured(
        "exact_match",
        1.0 if equal else 0.0,
        threshold=1.0,
        reason=reason,
        signature=signature(
            "exact",
            {
                "case": "ci" if ignore_case else "cs",
                "ws": "collapse" if collapse_whitespace else ("strip" if strip else "keep"),
                "unicode": "nfc",
            },
            (),
        ),
    )


def contains(
    output: str,
    needles: str | Sequence[str],
    *,
    mode: Literal["all", "any"] = "all",
    ignore_case: bool = False,
    negate: bool = False,
) -> Score:
    """Whether ``output`` contains the substring(s) ``needles``.

    ``mode="all"`` needs every needle (the value is the fraction found);
    ``mode="any"`` needs one. ``negate=True`` turns it into "contains none of
    them" (value: the fraction absent).
    """
    output = as_text(output, "output")
    items = (
        (needles,) if isinstance(needles, str) else tuple(as_text(n, f"needles[{i}]") for i, n in enumerate(needles))
    )
    if not items:
        raise ValueError("needles is empty: give at least one substring to look for")
    if any(n == "" for n in items):
        raise ValueError("needles contains an empty string, which every text contains; remove it")
    check_choice(mode, "mode", ("all", "any"))
    haystack = normalize_text(output, ignore_case=ignore_case, strip=False)
    found = [n for n in items if normalize_text(n, ignore_case=ignore_case, strip=False) in haystack]
    missing = [n for n in items if n not in found]
    if negate:
        value = len(missing) / len(items)
        passed = not found
        reason = "contains none of them" if passed else f"contains forbidden text: {', '.join(map(_preview, found))}"
    elif mode == "all":
        value = len(found) / len(items)
        passed = not missing
        reason = f"found all {len(items)}" if passed else f"missing: {', '.join(map(_preview, missing))}"
    else:
        value = 1.0 if found else 0.0
        passed = bool(found)
        reason = f"found {', '.join(map(_preview, found))}" if passed else f"none of {len(items)} found"
    # In every mode the value reaches the threshold 1.0 exactly when the check passes.
    return Score.measured(
        "not_contains" if negate else "contains",
        value,
        threshold=1.0,
        reason=reason,
        signature=signature(
            "contains", {"mode": "none" if negate else mode, "case": "ci" if ignore_case else "cs"}, ()
        ),
        details={"found": found, "missing": missing},
    )


def regex_match(
    output: str,
    pattern: str | re.Pattern[str],
    *,
    mode: Literal["search", "fullmatch", "match"] = "search",
    flags: int = 0,
) -> Score:
    """Whether ``pattern`` matches ``output`` (``re.search`` by default; ``fullmatch`` for the whole text)."""
    output = as_text(output, "output")
    check_choice(mode, "mode", ("search", "fullmatch", "match"))
    if isinstance(pattern, re.Pattern):
        compiled = pattern if not flags else re.compile(pattern.pattern, pattern.flags | flags)
    elif isinstance(pattern, str):
        try:
            compiled = re.compile(pattern, flags)
        except re.error as error:
            pointer = "" if error.pos is None else f"\n  {pattern}\n  {' ' * error.pos}^"
            raise ValueError(
                f"invalid regular expression {pattern!r}: {error.msg} at position {error.pos}{pointer}"
            ) from error
    else:
        raise TypeError(f"pattern must be a str or a compiled re.Pattern, got {type(pattern).__name__}")
    found = getattr(compiled, mode)(output)
    if found:
        reason = f"matched {_preview(found.group(0))} at {found.start()}-{found.end()}"
        details = {"match": found.group(0), "span": [found.start(), found.end()], "groups": list(found.groups())}
    else:
        reason = f"pattern {compiled.pattern!r} ({mode}) does not match"
        details = {}
    return Score.measured(
        "regex",
        1.0 if found else 0.0,
        threshold=1.0,
        reason=reason,
        signature=signature("regex", {"mode": mode, "flags": int(compiled.flags)}, ()),
        details=details,
    )


def edit_distance(
    output: str,
    expected: str,
    *,
    normalized: bool = True,
    ignore_case: bool = False,
    collapse_whitespace: bool = False,
    threshold: float | None = None,
) -> Score:
    """Levenshtein distance between ``output`` and ``expected`` (lower is better).

    ``normalized=True`` divides by the longer length (0 = equal, 1 = nothing
    in common; two empty strings are 0); ``threshold`` is a maximum.
    """
    output = as_text(output, "output")
    expected = as_text(expected, "expected")
    if normalized:
        threshold = check_unit_interval(threshold, "threshold")
    else:
        threshold = check_number(threshold, "threshold", low=0.0)
    levenshtein = require("rapidfuzz.distance.Levenshtein", "rapidfuzz", purpose="edit distance")
    a = normalize_text(output, ignore_case=ignore_case, collapse_whitespace=collapse_whitespace)
    b = normalize_text(expected, ignore_case=ignore_case, collapse_whitespace=collapse_whitespace)
    distance = levenshtein.distance(a, b)
    value = levenshtein.normalized_distance(a, b) if normalized else float(distance)
    return Score.measured(
        "edit_distance_normalized" if normalized else "edit_distance",
        value,
        threshold=threshold,
        higher_is_better=False,
        reason=f"{distance} edits between {len(a)} and {len(b)} characters",
        signature=signature(
            "levenshtein",
            {
                "norm": "max_len" if normalized else "none",
                "case": "ci" if ignore_case else "cs",
                "ws": "collapse" if collapse_whitespace else "strip",
            },
            ("rapidfuzz",),
        ),
        details={"distance": distance, "output_length": len(a), "expected_length": len(b)},
    )
