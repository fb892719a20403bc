"""History references as ``--llmops-compare`` takes them: ``main@latest``, ``@RUN_ID``, ``@GIT_REV``.

Kept apart from the store so that checking an option at start-up opens no file.
"""

from __future__ import annotations

import re

import pytest

_REF = re.compile(r"^(?:[A-Za-z0-9._/-]+@latest|@[0-9A-Za-z._-]{4,})$")


def is_history_ref(text: str) -> bool:
    return "@" in text


def check_history_ref(text: str, source: str) -> None:
    """Stop the run before any test when ``text`` is not a history reference."""
    if not _REF.match(text):
        raise pytest.UsageError(
            f"{source}: {text!r} is not a history reference; use BRANCH@latest (e.g. main@latest), "
            "@RUN_ID or @GIT_REVISION (at least 4 characters; `llmops history list` shows them)"
        )
