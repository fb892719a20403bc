"""Which cases a gate's ``[scope]`` covers. Standard library only: collection uses it in every run."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llmops.gates.parse import Gate


def scope_holds(gate: Gate, nodeid: str, markers: Sequence[str]) -> bool:
    """Whether the case ``nodeid`` (with ``markers``) is one of the cases ``gate`` looks at."""
    if gate.scope_kind is None:
        return True
    value = gate.scope_value or ""
    if gate.scope_kind == "suite":
        path = nodeid.split("::", 1)[0]
        prefix = value.rstrip("/")
        return path == prefix or path.startswith(prefix + "/")
    if gate.scope_kind == "test":
        function = nodeid.split("::")[-1].split("[", 1)[0]
        return function == value or nodeid == value or nodeid.startswith(value + "[")
    return value in markers


def applies_to(gate: Gate, cases: Sequence[tuple[str, Sequence[str]]]) -> bool:
    """Whether any of ``cases`` (node id, marker names) is in the gate's scope."""
    return any(scope_holds(gate, nodeid, markers) for nodeid, markers in cases)
