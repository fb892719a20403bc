"""The previous run's files, moved aside while a run is in progress.

A run killed with ``kill -9`` (an OOM killer, a CI timeout) never reaches its
end, so it never writes its results. Had the last run's ``results.json``,
HTML and Markdown stayed in place, they would look like this run's. So as a
run with eval cases starts, each of those files is renamed to
``NAME.previous``; the end of the run writes the new files and removes the
``.previous`` ones. A reader that finds ``NAME.previous`` but no ``NAME``
knows a run started and did not finish (``read_results`` says so).

Standard library only (the plugin calls this as the first eval case starts).
"""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".previous"


def previous_of(path: Path) -> Path:
    """Where ``path`` is kept while a run that will replace it is in progress."""
    return path.with_name(path.name + SUFFIX)


def set_aside(path: Path) -> Path | None:
    """Rename ``path`` to ``NAME.previous`` (replacing an older one); the new name, or None if there was no file.

    Raises ``OSError`` when the file cannot be moved (its folder is read-only).
    """
    if not path.is_file():
        return None
    previous = previous_of(path)
    os.replace(path, previous)
    return previous


def drop_previous(path: Path) -> None:
    """Remove ``NAME.previous`` once ``path`` holds this run's file; a file that cannot be removed is left."""
    try:
        previous_of(path).unlink(missing_ok=True)
    except OSError:
        pass  # a stale .previous is harmless beside a current file


def restore(path: Path) -> None:
    """Put ``NAME.previous`` back as ``path`` when the run ended without writing a new file (no eval case ran)."""
    previous = previous_of(path)
    if previous.is_file() and not path.exists():
        try:
            os.replace(previous, path)
        except OSError:
            pass  # left as .previous: readers then say the run did not finish, which is true of its files


def unfinished_run_message(path: Path) -> str | None:
    """What to tell a reader who asks for ``path`` when a run set it aside and did not write it again."""
    previous = previous_of(path)
    if path.exists() or not previous.exists():
        return None
    return (
        "no results: the run that was to write them started but did not finish "
        f"(it is still running, or it was killed); the previous run's results are in {previous}"
    )
