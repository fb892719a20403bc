"""The cells of a matrix: which values of which axes, their readable ids, their validation.

A matrix comes from ``@pytest.mark.llm_matrix(prompt=[...], model=[...],
temperature=[...], shots=[...], name="qa", early_stop=False)``; axes the
marker leaves out come from the nearest suite ``conftest.py`` that sets
``llmops_matrix = {...}`` (or the path of a TOML file written by ``llmops
matrix best``), then from the ini value ``llmops_matrix`` (lines such as
``temperature = 0, 0.7``). Each case runs once per cell; the cell's id
(``qa_v2-t0.7-3shot``) joins the test's other parameters.

Standard library only: the plugin parametrizes with it at collection time.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The axes, in the order they appear in a cell's id.
AXES = ("model", "prompt", "temperature", "shots")
#: Marker arguments that are not axes.
OPTIONS = ("name", "early_stop")
#: The conftest attribute and the ini value a suite declares its matrix in.
ATTRIBUTE = "llmops_matrix"
#: The parameter name the plugin parametrizes (also a fixture: the running cell).
PARAM = "llmops_cell"
EXAMPLE = 'llm_matrix(prompt=["qa_v1", "qa_v2"], temperature=[0, 0.7], shots=[0, 3])'


class MatrixError(ValueError):
    """A matrix that cannot run: the message names where it came from and the fix."""


@dataclass(frozen=True)
class Cell:
    """One combination of axis values; ``None`` for an axis the matrix does not vary."""

    matrix: str
    model: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    shots: int | None = None
    early_stop: bool = False

    @property
    def id(self) -> str:
        """Readable id, e.g. ``qa_v2-t0.7-3shot`` (only the axes the matrix has)."""
        parts = []
        if self.model is not None:
            parts.append(self.model)
        if self.prompt is not None:
            parts.append(self.prompt)
        if self.temperature is not None:
            parts.append(f"t{self.temperature:g}")
        if self.shots is not None:
            parts.append(f"{self.shots}shot")
        return "-".join(parts)

    @property
    def prompt_name(self) -> str | None:
        """The template name of the ``prompt`` value (``qa@2`` -> ``qa``)."""
        return None if self.prompt is None else self.prompt.split("@", 1)[0]

    @property
    def prompt_version(self) -> str | None:
        """The pinned version of the ``prompt`` value (``qa@2`` -> ``2``), if any."""
        if self.prompt is None or "@" not in self.prompt:
            return None
        return self.prompt.split("@", 1)[1]

    def axes(self) -> dict[str, Any]:
        """The axis values this matrix varies."""
        return {axis: getattr(self, axis) for axis in AXES if getattr(self, axis) is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"matrix": self.matrix, "cell": self.id, **self.axes()}

    def __str__(self) -> str:
        return self.id


def _axis_values(axis: str, raw: Any, where: str) -> list[Any]:
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raw = [raw]
    values = list(raw)
    if not values:
        raise MatrixError(f"{where}: the {axis!r} axis is empty; give it at least one value, e.g. {EXAMPLE}")
    checked: list[Any] = []
    for value in values:
        if axis in ("model", "prompt"):
            if not isinstance(value, str) or not value.strip():
                raise MatrixError(f"{where}: {axis} values are non-empty strings, got {value!r}. Example: {EXAMPLE}")
            value = value.strip()
            if axis == "prompt" and value.endswith("@"):
                raise MatrixError(f"{where}: prompt {value!r} names no version after '@'; write e.g. qa@2 or qa")
        elif axis == "temperature":
            number = _number(value)
            if number is None or not 0 <= number <= 2:
                raise MatrixError(f"{where}: temperature values are numbers from 0 to 2, got {value!r}")
            value = number
        else:
            if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, str) and value.strip().isdigit()):
                raise MatrixError(f"{where}: shots values are whole numbers >= 0 (few-shot examples), got {value!r}")
            value = int(value)
        if value in checked:
            raise MatrixError(f"{where}: {axis} value {value!r} is listed twice")
        checked.append(value)
    return checked


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_ini(lines: Sequence[str], where: str = "ini llmops_matrix") -> dict[str, Any]:
    """``["temperature = 0, 0.7", "shots = 0 3"]`` -> axes; a line that does not parse is an error."""
    axes: dict[str, Any] = {}
    for line in lines:
        if not line.strip() or line.strip().startswith("#"):
            continue
        if "=" not in line:
            raise MatrixError(f"{where}: line {line!r} is not 'axis = value, value'; e.g. temperature = 0, 0.7")
        key, _, rest = line.partition("=")
        axes[key.strip()] = [part for part in rest.replace(",", " ").split() if part]
    return axes


def read_matrix_file(path: Path, where: str) -> dict[str, Any]:
    """The ``[llmops_matrix]`` table of a TOML file (as ``llmops matrix best --write`` writes it)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MatrixError(f"{where}: cannot read the matrix file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{where}: {path} is not valid TOML: {exc}") from None
    table = data.get(ATTRIBUTE)
    if not isinstance(table, dict):
        raise MatrixError(f"{where}: {path} has no [{ATTRIBUTE}] table; write one with `llmops matrix best --write`")
    return dict(table)


def conftest_axes(value: Any, conftest: Path) -> dict[str, Any]:
    """A conftest's ``llmops_matrix``: a dict of axes, or the path of a matrix TOML file (relative to it)."""
    where = f"{conftest}: {ATTRIBUTE}"
    if isinstance(value, (str, Path)):
        path = Path(value)
        return read_matrix_file(path if path.is_absolute() else conftest.parent / path, where)
    if not isinstance(value, Mapping):
        raise MatrixError(f"{where} must be a dict of axes or the path of a matrix TOML file, got {type(value).__name__}")
    return dict(value)


def build_cells(layers: Sequence[tuple[str, Mapping[str, Any]]], *, default_name: str) -> list[Cell]:
    """The grid of cells from ``(where, axes)`` layers, lowest precedence first (ini, conftest, marker).

    A later layer replaces an axis of an earlier one. Unknown axes, empty
    axes, bad values and a grid with no axis at all raise ``MatrixError``.
    """
    merged: dict[str, tuple[str, Any]] = {}
    for where, axes in layers:
        for key, value in axes.items():
            if key not in AXES and key not in OPTIONS:
                raise MatrixError(
                    f"{where}: unknown matrix axis {key!r}; the axes are {', '.join(AXES)} "
                    f"(and the options {', '.join(OPTIONS)}). Example: {EXAMPLE}"
                )
            merged[key] = (where, value)
    name_from, name = merged.pop("name", ("llm_matrix", default_name))
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "[]=,"):
        raise MatrixError(f"{name_from}: a matrix name is a non-empty string without [ ] = or a comma, got {name!r}")
    early = merged.pop("early_stop", (None, False))[1]
    if isinstance(early, str):
        early = early.strip().lower() in ("1", "true", "yes", "on")
    values = {axis: _axis_values(axis, raw, where) for axis, (where, raw) in merged.items()}
    if not values:
        where = layers[-1][0] if layers else "llm_matrix"
        raise MatrixError(f"{where}: the matrix has no axis; give at least one, e.g. {EXAMPLE}")
    axes = [axis for axis in AXES if axis in values]
    return [
        Cell(matrix=name.strip(), early_stop=bool(early), **dict(zip(axes, combo, strict=True)))
        for combo in itertools.product(*(values[axis] for axis in axes))
    ]


def case_key(nodeid: str, callspec_id: str, cell_id: str) -> str:
    """The case's id without its cell: the same case in two cells has the same key (for paired tests)."""
    base = nodeid.split("[", 1)[0]
    rest = callspec_id
    if rest == cell_id:
        rest = ""
    elif rest.startswith(cell_id + "-"):
        rest = rest[len(cell_id) + 1:]
    elif rest.endswith("-" + cell_id):
        rest = rest[: -len(cell_id) - 1]
    else:
        rest = rest.replace("-" + cell_id + "-", "-", 1)
    return f"{base}[{rest}]" if rest else base
