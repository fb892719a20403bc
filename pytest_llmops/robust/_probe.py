"""What one hypothesis example of an ``llm_robust`` test said: its targets, notes and answers.

The example's body runs on the plugin's event loop, while hypothesis runs in
a worker thread whose build context the loop cannot see; so checks record
here (a context variable current in the example's task) and the runner hands
targets and notes to hypothesis in its own thread. Standard library only.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Probe:
    targets: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    #: The example's arguments once model-written values (paraphrases, translations) are resolved.
    resolved: dict[str, Any] | None = None


_current: contextvars.ContextVar[Probe | None] = contextvars.ContextVar("llmops_robust_probe", default=None)


def current_probe() -> Probe | None:
    return _current.get()


def bind(probe: Probe) -> contextvars.Token[Probe | None]:
    return _current.set(probe)


def target(score: float, label: str = "") -> None:
    """Steer hypothesis toward examples with a higher ``score`` (``hypothesis.target`` for async eval cases).

    Outside an ``llm_robust`` example this does nothing.
    """
    probe = _current.get()
    if probe is not None:
        # Hypothesis takes one value per label and example: keep the worst-case (highest) one.
        probe.targets[label] = max(float(score), probe.targets.get(label, float("-inf")))


def note(text: str) -> None:
    """Add a line to the failure message of the minimal breaking example (``hypothesis.note`` for async cases)."""
    probe = _current.get()
    if probe is not None:
        probe.notes.append(str(text))


def answer(text: str) -> None:
    probe = _current.get()
    if probe is not None and str(text) not in probe.answers:
        probe.answers.append(str(text))
