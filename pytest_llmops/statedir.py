"""Where a run keeps its state (cache, results, baselines).

The plugin sets it to ``<rootdir>/.llmops`` at start-up; features that store
things read it when they need it. Kept apart, with no imports of its own, so
that setting it costs the plugin nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

_state_dir: Path | None = None


def set_state_dir(path: str | os.PathLike[str] | None) -> None:
    """Make ``path`` the state folder of this process; ``None`` forgets it."""
    global _state_dir
    _state_dir = None if path is None else Path(path)


def configured_state_dir() -> Path | None:
    """The folder set by :func:`set_state_dir`, if any."""
    return _state_dir
