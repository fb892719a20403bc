"""The ``prompt`` and ``llm`` fixtures inside a matrix cell.

In a cell, ``prompt(question=...)`` renders the cell's template with the
cell's number of few-shot examples and its temperature; ``prompt("other",
...)`` still renders any template of the library as usual. ``llm`` is the
cell's model with the cell's temperature as its default.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from pytest_llmops.matrix.cells import Cell
from pytest_llmops.prompts import PromptError, PromptLibrary, PromptTemplate, RenderedPrompt
from pytest_llmops.prompts._template import build_template


def check_cell_prompt(library: PromptLibrary, cell: Cell) -> str | None:
    """Why ``cell`` cannot render (unknown template, other version, too few examples), or None."""
    name = cell.prompt_name
    if name is None:
        if cell.shots:
            return "a shots axis needs a prompt axis (the template holds the few-shot examples)"
        return None
    if name not in library:
        names = ", ".join(library.names()) or "(none)"
        return f"no prompt template named {name!r} in {', '.join(map(str, library.dirs))}; available: {names}"
    try:
        template = library.get(name)
    except PromptError as exc:
        return str(exc)
    if cell.prompt_version is not None and template.version != cell.prompt_version:
        return (f"prompt {cell.prompt!r} pins version {cell.prompt_version!r}, but {template.origin} is version "
                f"{template.version!r}; pin that version or keep each version in its own template file")
    if cell.shots is not None and cell.shots > len(template.examples):
        return (f"shots={cell.shots}, but {template.origin} has {len(template.examples)} [[examples]]; add examples "
                f"or lower the shots")
    return None


def with_shots(template: PromptTemplate, shots: int) -> PromptTemplate:
    """``template`` keeping only its first ``shots`` few-shot examples (its hash changes with them)."""
    if shots >= len(template.examples):
        return template
    kept = [m for m in template.messages if not _dropped(m.field, shots)]
    return build_template(
        name=template.name, version=template.version, path=template.path, origin=template.origin,
        description=template.description, params=template.params, messages=kept, examples=template.examples[:shots],
    )


def _dropped(field: str, shots: int) -> bool:
    # Example messages are named examples[N].user / examples[N].assistant, N from 1.
    if not field.startswith("examples["):
        return False
    return int(field[len("examples["):field.index("]")]) > shots


class CellPrompt:
    """The ``prompt`` fixture in a matrix cell: the library, with the cell's template as the default."""

    def __init__(self, library: PromptLibrary, cell: Cell) -> None:
        self.library = library
        self.cell = cell
        self._template: PromptTemplate | None = None

    def __repr__(self) -> str:
        return f"CellPrompt({self.cell.id!r}, {self.library!r})"

    @property
    def template(self) -> PromptTemplate:
        """The cell's template with the cell's number of examples."""
        if self._template is None:
            if self.cell.prompt_name is None:
                raise PromptError(
                    f"matrix cell {self.cell.id} has no prompt axis: call prompt(NAME, ...) with a template name"
                )
            template = self.library.get(self.cell.prompt_name)
            self._template = template if self.cell.shots is None else with_shots(template, self.cell.shots)
        return self._template

    def __call__(self, name: str | None = None, /, **variables: Any) -> RenderedPrompt:
        """Render the cell's template (no name, or the cell's template name), else the named one."""
        if name is None or name == self.cell.prompt_name:
            rendered = self.template.render(variables)
        else:
            rendered = self.library(name, **variables)
        if self.cell.temperature is None:
            return rendered
        # The cell's temperature beats the template's default (the client lets template params win).
        return replace(rendered, params=MappingProxyType({**rendered.params, "temperature": self.cell.temperature}))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.library, name)

    def __contains__(self, name: object) -> bool:
        return name in self.library
