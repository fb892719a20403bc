"""Reading a JSONL file of objects where every problem names the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def json_objects(path: Path, error: type[Exception], *, missing: str, expected: str = "a JSON object"
                 ) -> Iterator[tuple[str, int, dict]]:
    """``(where, line number, object)`` for each non-blank line of ``path``.

    Problems raise ``error`` with ``path`` or ``path:line`` first: ``missing``
    completes "PATH: no such ..." when the file is absent; ``expected`` names
    what a line must hold.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise error(f"{path}: no such {missing}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); one object a line") from None
        if not isinstance(data, dict):
            raise error(f"{where}: expected {expected}, got {type(data).__name__}")
        yield where, number, data
