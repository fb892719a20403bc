"""Eval cases from JSONL files, for ``pytest.mark.parametrize``.

Each line is one JSON object; its fields become attributes of an ``EvalCase``
(``case.question``, ``case.reference``). A malformed line is an error that
names the file and the line, never a silently skipped case.

    @pytest.mark.parametrize("case", load_cases("evalsuites/qa/cases.jsonl"), ids=str)
    def test_answer(case, llm): ...
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: The case field that documents a known weakness of the model under test (see ``case_params``).
KNOWN_FAILURE_FIELD = "known_failure"


class CaseFileError(ValueError):
    """A cases file that cannot be read: names the file, the line and the fix."""


class EvalCase(Mapping[str, Any]):
    """One eval case: read-only fields, reachable as attributes or keys.

    ``str(case)`` is its id (the ``id`` field, or ``<file stem>-<line>``), so
    ``ids=str`` in ``parametrize`` gives readable test ids.
    """

    __slots__ = ("_fields", "id", "source")

    def __init__(self, fields: Mapping[str, Any], *, id: str, source: str = "") -> None:
        self._fields = MappingProxyType(dict(fields))
        self.id = id
        #: ``path:line`` the case came from.
        self.source = source

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            available = ", ".join(sorted(self._fields)) or "none"
            raise AttributeError(f"case {self.id!r} ({self.source}) has no field {name!r}; fields: {available}") from None

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"EvalCase({self.id!r}, {dict(self._fields)!r})"


def load_cases(path: str | Path, *, required: tuple[str, ...] = ()) -> list[EvalCase]:
    """Read eval cases from a JSONL file (one JSON object a line; blank lines and ``#`` lines skipped).

    ``required`` names fields every case must have. Ids must be unique.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseFileError(f"{path}: no such cases file (paths are relative to the directory pytest runs in)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: cannot read the cases file: {exc}") from None
    cases: list[EvalCase] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CaseFileError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                f"each line must be one JSON object"
            ) from None
        if not isinstance(fields, dict):
            raise CaseFileError(f"{path}:{number}: expected a JSON object, got {type(fields).__name__}")
        missing = [name for name in required if name not in fields]
        if missing:
            raise CaseFileError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        case_id = str(fields.get("id", f"{path.stem}-{number}"))
        if case_id in seen:
            raise CaseFileError(f"{path}:{number}: duplicate id {case_id!r} (first on line {seen[case_id]})")
        seen[case_id] = number
        cases.append(EvalCase(fields, id=case_id, source=f"{path}:{number}"))
    if not cases:
        raise CaseFileError(f"{path}: no cases in the file")
    return cases


def case_params(cases: Iterable[EvalCase], known: Mapping[str, str] | None = None) -> list[Any]:
    """``pytest.param`` objects for ``parametrize``, with readable ids and known weaknesses marked.

    A case whose ``known_failure`` field (or entry in ``known``, by case id) says
    what the model gets wrong is marked ``llm_known_failure``: it runs and is
    judged as usual, and the summary lists it apart (also when it passes), so
    the run tells the truth about weak cases without failing a release on a
    wording change. ``known`` names ids that must exist: a stale entry is an error.
    """
    import pytest

    cases = list(cases)
    if known is not None:
        stale = sorted(set(known) - {case.id for case in cases})
        if stale:
            raise CaseFileError(f"known failures name case ids that are not in the cases: {', '.join(stale)}")
    params = []
    for case in cases:
        reason = known.get(case.id) if known is not None else case.get(KNOWN_FAILURE_FIELD)
        marks = [pytest.mark.llm_known_failure(str(reason))] if reason else []
        params.append(pytest.param(case, id=str(case), marks=marks))
    return params
