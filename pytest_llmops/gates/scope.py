"""Which cases a gate's ``[scope]`` covers. Standard library only: collection uses it in every run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmops.gates.parse import Gate


_UNKNOWN: Any = object()


def scope_holds(gate: Gate, nodeid: str, markers: Sequence[str], matrix: Any = _UNKNOWN) -> bool:
    """Whether the case ``nodeid`` (with ``markers``) is one of the cases ``gate`` looks at.

    ``matrix`` is the case's cell (a ``MatrixCellRef`` or None); at collection, before
    cases ran, a matrix scope holds for any test marked ``llm_matrix``.
    """
    if gate.within is not None and not _under(nodeid, gate.within):
        return False
    if gate.scope_kind is None:
        return True
    value = gate.scope_value or ""
    if gate.scope_kind == "matrix":
        if matrix is _UNKNOWN:
            return "llm_matrix" in markers
        return matrix is not None and matrix.matrix == value and all(
            _axis_matches(matrix, key, wanted) for key, wanted in gate.filters
        )
    if gate.scope_kind == "suite":
        return _under(nodeid, value)
    if gate.scope_kind == "test":
        function = nodeid.split("::")[-1].split("[", 1)[0]
        return function == value or nodeid == value or nodeid.startswith(value + "[")
    return value in markers


def _under(nodeid: str, folder: str) -> bool:
    path = nodeid.split("::", 1)[0]
    prefix = folder.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def applies_to(gate: Gate, cases: Sequence[tuple[str, Sequence[str]]]) -> bool:
    """Whether any of ``cases`` (node id, marker names) is in the gate's scope."""
    return any(scope_holds(gate, nodeid, markers) for nodeid, markers in cases)


def _axis_matches(matrix: Any, key: str, wanted: str) -> bool:
    actual = getattr(matrix, key, None)
    if actual is None:
        return False
    if isinstance(actual, (int, float)):
        try:
            return float(wanted) == float(actual)
        except ValueError:
            return False
    return str(actual) == wanted
