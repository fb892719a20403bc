"""Checks on what a metric is given, with messages that name the argument and the fix."""

from __future__ import annotations

from collections.abc import Sequence


def as_text(value: object, name: str) -> str:
    """``value`` if it is a string; a ``TypeError`` naming ``name`` otherwise.

    Model answers are often ``None`` (a refusal, a tool call) or a response
    object; say so instead of letting a library fail deep inside.
    """
    if isinstance(value, str):
        return value
    hint = ""
    if value is None:
        hint = " (the model returned no text? check the answer before scoring it)"
    elif isinstance(value, (list, tuple)):
        hint = " (pass the text itself, not a list of tokens or of texts)"
    raise TypeError(f"{name} must be a str, got {type(value).__name__}{hint}")


def as_references(value: object, name: str = "references") -> tuple[str, ...]:
    """One reference string or a non-empty sequence of them, as a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        refs = tuple(value)
        if not refs:
            raise ValueError(f"{name} is empty: give at least one reference text")
        for index, ref in enumerate(refs):
            as_text(ref, f"{name}[{index}]")
        return refs
    raise TypeError(f"{name} must be a str or a sequence of str, got {type(value).__name__}")


def blank_reference_reason(refs: Sequence[str]) -> str | None:
    """Why scoring against ``refs`` means nothing (every reference blank), or ``None``."""
    if any(map(str.strip, refs)):
        return None
    return "every reference is empty or whitespace, so there is nothing to compare against; fix the test data"


def check_unit_interval(value: float | None, name: str) -> float | None:
    """A threshold on a 0-1 metric must lie in [0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} is outside [0, 1]; this metric's scores lie between 0 and 1")
    return float(value)


def check_number(
    value: float | None, name: str, *, low: float | None = None, high: float | None = None
) -> float | None:
    """A threshold that must be a number within [low, high] when those are given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={value!r} is outside [{low}, {high}]")
    return float(value)


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; a ``ValueError`` listing them otherwise."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of: {', '.join(map(repr, choices))}")
    return value
