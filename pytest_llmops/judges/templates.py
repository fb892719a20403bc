"""Judge templates as data: one folder per judge template, rendered through the prompt layer.

``templates/<name>/<name>.toml`` is an ordinary prompt template (see
``pytest_llmops.prompts``: name, version, content hash, Jinja sandbox); the
answer schema is the pydantic model ``schemas.SCHEMAS[<name>]``. A project
may replace a shipped template with its own file (same variables, same
answer schema) through ``load_judge_template(name, path=...)``; its own
name, version and hash then follow every score.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_llmops.judges.schemas import JudgeAnswer
    from pytest_llmops.prompts import PromptTemplate

TEMPLATES_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class JudgeTemplate:
    """A judge prompt template and the schema its answers must match."""

    kind: str
    prompt: PromptTemplate
    schema: type[JudgeAnswer]

    @property
    def name(self) -> str:
        return self.prompt.name

    @property
    def version(self) -> str:
        return self.prompt.version

    @property
    def hash(self) -> str:
        return self.prompt.hash

    @property
    def ref(self) -> str:
        """``name@version#hash12``: how signatures name this template."""
        return f"{self.prompt.name}@{self.prompt.version}#{self.prompt.hash[:12]}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.prompt.name,
            "version": self.prompt.version,
            "hash": self.prompt.hash,
        }


def shipped_templates() -> list[str]:
    """Names of the judge templates that ship with the package."""
    return sorted(p.name for p in TEMPLATES_DIR.iterdir() if (p / f"{p.name}.toml").is_file())


@functools.cache
def _load(kind: str, path: Path | None) -> JudgeTemplate:
    from pytest_llmops.judges.schemas import SCHEMAS
    from pytest_llmops.prompts import PromptError, load_template

    if kind not in SCHEMAS:
        raise ValueError(f"unknown judge template kind {kind!r}; the kinds are: {', '.join(sorted(SCHEMAS))}")
    file = path if path is not None else TEMPLATES_DIR / kind / f"{kind}.toml"
    prompt = load_template(file)
    shipped = load_template(TEMPLATES_DIR / kind / f"{kind}.toml") if path is not None else prompt
    if prompt.variables - shipped.variables:
        extra = ", ".join(sorted(prompt.variables - shipped.variables))
        raise PromptError(
            f"{file}: the judge template reads variables the {kind!r} judge does not provide: {extra}. "
            f"It may use only: {', '.join(sorted(shipped.variables))}.",
            path=file,
        )
    return JudgeTemplate(kind, prompt, SCHEMAS[kind])


def load_judge_template(kind: str, *, path: str | Path | None = None) -> JudgeTemplate:
    """The judge template of ``kind`` (``rubric``, ``faithfulness``, ...); ``path`` replaces the shipped file."""
    return _load(kind, None if path is None else Path(path).resolve())


def resolve_template(kind: str, template: JudgeTemplate | str | Path | None) -> JudgeTemplate:
    """What metrics accept as ``template=``: ``None`` (shipped), a ``JudgeTemplate`` or a file path."""
    if template is None:
        return load_judge_template(kind)
    if isinstance(template, JudgeTemplate):
        if template.kind != kind:
            raise ValueError(f"a {template.kind!r} judge template was given where a {kind!r} one is needed")
        return template
    return load_judge_template(kind, path=template)
