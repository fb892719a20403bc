"""Gates that a suite declares next to its tests, in its ``conftest.py``::

    # evalsuites/rag_qa/conftest.py
    llmops_gates = ["pass_rate.lower>=0.8", "recall_at_5.mean>=0.9"]

A gate without its own ``[scope]`` is scoped to the folder of the conftest
(``[suite=evalsuites/rag_qa]``), and applies only when that suite was
collected: running another folder, or the project's unit tests, leaves it
out. Gates from the ini file and the command line apply to every run.

Standard library only (the plugin calls this at collection time).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_llmops.gates.parse import Gate, GateSyntaxError, parse_gate

#: The conftest attribute a suite declares its gates in.
ATTRIBUTE = "llmops_gates"


def suite_gates(plugins: list[Any], rootpath: Path) -> list[Gate]:
    """The gates declared by the loaded ``conftest.py`` modules, scoped to their folders.

    A malformed gate raises ``GateSyntaxError`` naming the conftest file.
    """
    gates: list[Gate] = []
    for plugin in plugins:
        file = getattr(plugin, "__file__", None)
        expressions = getattr(plugin, ATTRIBUTE, None)
        if expressions is None or not file or Path(file).name != "conftest.py":
            continue
        folder = Path(file).resolve().parent
        try:
            relative = folder.relative_to(rootpath.resolve()).as_posix()
        except ValueError:
            relative = folder.as_posix()
        source = f"{relative}/conftest.py: {ATTRIBUTE}" if relative != "." else f"conftest.py: {ATTRIBUTE}"
        if isinstance(expressions, str) or not all(isinstance(e, str) for e in expressions):
            raise GateSyntaxError(str(expressions), 0, "llmops_gates must be a list of strings", source)
        for expression in expressions:
            gate = parse_gate(expression, source=source)
            if relative != ".":
                gate = replace(gate, within=relative)
                if gate.scope_kind is None:
                    gate = replace(gate, scope_kind="suite", scope_value=relative)
            gates.append(gate)
    return gates


def to_wire(gates: list[Gate]) -> list[dict[str, Any]]:
    """Plain dicts, to travel from an xdist worker to the controller."""
    return [{"expression": g.expression, "scope_kind": g.scope_kind, "scope_value": g.scope_value, "source": g.source,
             "within": g.within} for g in gates]


def from_wire(items: list[dict[str, Any]]) -> list[Gate]:
    gates = []
    for item in items:
        gate = parse_gate(item["expression"], source=item["source"])
        gates.append(replace(gate, scope_kind=item["scope_kind"], scope_value=item["scope_value"],
                             within=item.get("within")))
    return gates


def from_results(results: list[Any], *, source: str) -> list[Gate]:
    """The gates a results file recorded (``GateResult``s), parsed again with the scope and folder they had."""
    gates = []
    for result in results:
        gate = parse_gate(result.expression, source=source)
        if gate.scope_kind is None and result.scope:
            # A suite gate written without a scope took its conftest's folder, which the expression does not say.
            kind, _, value = result.scope.partition("=")
            gate = replace(gate, scope_kind=kind, scope_value=value)
        gates.append(replace(gate, within=getattr(result, "within", None)))
    return gates


def merge(existing: list[Gate], new: list[Gate]) -> list[Gate]:
    """``existing`` plus the gates of ``new`` not already there (each worker reports the same suites)."""
    seen = {(g.expression, g.scope) for g in existing}
    merged = list(existing)
    for gate in new:
        if (gate.expression, gate.scope) not in seen:
            seen.add((gate.expression, gate.scope))
            merged.append(gate)
    return merged
