"""A library of prompt template files, searched by name across folders.

This is what the ``prompt`` fixture is: ``prompt("support_qa", question=...)``
finds ``support_qa.toml`` in the configured folders (setting
``llmops_prompts``), renders it and returns the messages.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from pytest_llmops.prompts._loader import load_template
from pytest_llmops.prompts._template import PromptError, PromptTemplate, RenderedPrompt

__all__ = ["SETTING", "PromptLibrary"]

#: The setting that lists the prompt folders, named in error messages.
SETTING = "llmops_prompts"


def _is_skipped(relative: Path) -> bool:
    # Hidden folders (.git, .venv) and caches never hold prompts.
    return any(part.startswith(".") or part == "__pycache__" for part in relative.parts[:-1])


class PromptLibrary:
    """Prompt templates found in one or more folders (each searched recursively).

    A template's name is its file's stem. When several folders hold the same
    name, the first folder wins, so a project folder listed first can override
    prompts shipped elsewhere. Two files with the same name in one folder are
    an error. Files are read on first use and re-read when they change.
    """

    def __init__(self, *dirs: Path | str) -> None:
        if not dirs:
            raise PromptError(
                f"no prompt folders given. Set `{SETTING}` (ini) to the folder(s) holding your .toml prompt templates."
            )
        self.dirs = tuple(Path(directory) for directory in dirs)
        for directory in self.dirs:
            if not directory.is_dir():
                what = "is a file, not a folder" if directory.exists() else "does not exist"
                raise PromptError(
                    f"prompt folder {str(directory)!r} {what}. Create it, or point the setting "
                    f"`{SETTING}` at the folder that holds your .toml prompt templates.",
                    path=directory,
                )
        self._index = self._scan()
        self._loaded: dict[Path, tuple[tuple[int, int], PromptTemplate]] = {}

    def __repr__(self) -> str:
        return f"PromptLibrary({', '.join(repr(str(directory)) for directory in self.dirs)})"

    def _scan(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        for directory in self.dirs:
            found: dict[str, list[Path]] = {}
            for path in sorted(directory.rglob("*.toml")):
                if path.is_file() and not _is_skipped(path.relative_to(directory)):
                    found.setdefault(path.stem, []).append(path)
            duplicates = {name: paths for name, paths in found.items() if len(paths) > 1}
            if duplicates:
                lines = [
                    f"  {name}: {', '.join(str(path) for path in paths)}" for name, paths in sorted(duplicates.items())
                ]
                raise PromptError(
                    f"prompt folder {str(directory)!r} has several files with the same prompt name:\n"
                    + "\n".join(lines)
                    + "\nA name must be unique within a folder: rename or delete all but one.",
                    path=directory,
                )
            for name, paths in found.items():
                index.setdefault(name, paths[0])  # an earlier folder wins
        return index

    def names(self) -> list[str]:
        """The names of all templates found, sorted."""
        return sorted(self._index)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def get(self, name: str) -> PromptTemplate:
        """The template called ``name``; a ``PromptError`` lists the choices when there is none."""
        if not isinstance(name, str):
            raise PromptError(f"a prompt name must be a string, got {type(name).__name__} {name!r}.")
        path = self._index.get(name)
        if path is None or not path.is_file():
            self._index = self._scan()  # a file may have been added or moved since
            path = self._index.get(name)
        if path is None:
            raise self._unknown(name)
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._loaded.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        template = load_template(path)
        self._loaded[path] = (key, template)
        return template

    def load_all(self) -> list[PromptTemplate]:
        """Load and check every template; one ``PromptError`` reports every bad file."""
        templates, errors = [], []
        for name in self.names():
            try:
                templates.append(self.get(name))
            except PromptError as exc:
                errors.append(str(exc))
        if errors:
            raise PromptError(f"{len(errors)} prompt template(s) are invalid:\n\n" + "\n\n".join(errors))
        return templates

    def __call__(self, name: str, /, **variables: Any) -> RenderedPrompt:
        """Render template ``name`` with ``variables``: ``prompt("support_qa", question=q, context=docs)``."""
        return self.get(name).render(variables)

    def _unknown(self, name: str) -> PromptError:
        names = self.names()
        close = [candidate for candidate in names if candidate.lower() == name.lower()]
        close = close or difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        folders = ", ".join(str(directory) for directory in self.dirs)
        available = ", ".join(names) if names else "(none)"
        return PromptError(
            f"no prompt template named {name!r}.{hint} Available: {available}. "
            f"Searched (setting `{SETTING}`): {folders}. "
            f"Fix the name, or add {os.path.join(str(self.dirs[0]), name + '.toml')}."
        )
