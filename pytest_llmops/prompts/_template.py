"""Prompt templates, rendered prompts and their content hashes.

A ``PromptTemplate`` is immutable and already compiled; ``render`` fills in
the variables and returns a ``RenderedPrompt``: the chat messages plus the
template's default sampling parameters, ready for the model client.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, UndefinedError

from pytest_llmops.case import PromptUse, current_case
from pytest_llmops.prompts._jinja import compile_source, undeclared_variables

__all__ = [
    "Example",
    "MessageTemplate",
    "PromptError",
    "PromptTemplate",
    "RenderedPrompt",
    "build_template",
    "messages_hash",
]

#: Bumped only if the canonical form below changes; part of every template hash.
HASH_FORMAT = "pytest-llmops/prompt-template/1"


class PromptError(Exception):
    """A prompt template file, or a call that renders one, is wrong.

    The message names the file (and line where known), what is wrong and the
    fix. ``path`` and ``line`` carry the same for programs.
    """

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class MessageTemplate:
    """One chat message of a template: its role and its Jinja2 source.

    ``field`` says where it came from in the file (``template``, ``system``,
    ``examples[1].user``, ``messages[2].content``), for error messages.
    """

    role: str
    source: str
    field: str


@dataclass(frozen=True)
class Example:
    """A few-shot example: a user turn and the assistant's answer (both templates)."""

    user: str
    assistant: str


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def messages_hash(messages: Iterable[Mapping[str, Any]]) -> str:
    """sha256 hex of chat messages in canonical JSON (key order and layout do not matter)."""
    return hashlib.sha256(_canonical_json([dict(message) for message in messages])).hexdigest()


@dataclass(frozen=True)
class RenderedPrompt:
    """A template filled in: the messages to send and the default sampling parameters.

    ``messages`` holds ``{"role": ..., "content": ...}`` dicts in the order the
    model sees them. ``params`` are the template's defaults (``temperature``,
    ``max_tokens``, ``top_p``, ``stop``, ``seed``); callers may override them.
    """

    template_name: str
    template_version: str
    template_hash: str
    messages: tuple[dict[str, str], ...]
    params: Mapping[str, Any]

    def __hash__(self) -> int:
        # The messages are dicts (what clients expect), so hash what identifies them instead.
        return hash((self.template_hash, self.prompt_hash))

    @property
    def prompt_hash(self) -> str:
        """sha256 hex of the rendered messages (what the model actually sees)."""
        return messages_hash(self.messages)

    @property
    def ref(self) -> str:
        """``name@version`` of the template this came from."""
        return f"{self.template_name}@{self.template_version}"

    def to_messages(self) -> list[dict[str, str]]:
        """Fresh copies of the messages, safe to hand to a client that may modify them."""
        return [dict(message) for message in self.messages]

    def text(self) -> str:
        """The messages as one readable text, for logs and reports.

        Each message becomes ``[role]`` on its own line followed by its content;
        messages are separated by a blank line. Send ``messages`` to a model,
        not this.
        """
        return "\n\n".join(f"[{message['role']}]\n{message['content']}" for message in self.messages)

    def __str__(self) -> str:
        return self.text()


def _names(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "(none)"


@dataclass(frozen=True)
class PromptTemplate:
    """A versioned prompt template, compiled and ready to render.

    Build one with ``load_template`` (a TOML file), ``PromptLibrary.get`` or
    ``template_from_string`` (inline). ``messages`` are the message templates
    in the order they are sent, few-shot ``examples`` already placed among
    them. ``variables`` are the names the templates read; ``hash`` is a
    sha256 over the canonical content (name, version, messages, examples,
    parameters), independent of the file's path and TOML layout.
    """

    name: str
    version: str
    path: Path | None
    description: str
    params: Mapping[str, Any]
    variables: frozenset[str]
    hash: str
    messages: tuple[MessageTemplate, ...]
    examples: tuple[Example, ...] = ()
    _compiled: tuple[Template, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self._compiled) != len(self.messages):  # built directly rather than through build_template
            object.__setattr__(self, "_compiled", tuple(compile_source(message.source) for message in self.messages))

    @property
    def ref(self) -> str:
        """``name@version``, how results and error messages name this template."""
        return f"{self.name}@{self.version}"

    @property
    def origin(self) -> str:
        """The file this template was loaded from, or ``inline`` for one built in code."""
        return str(self.path) if self.path is not None else "inline"

    def render(
        self, variables: Mapping[str, Any] | None = None, /, *, strict: bool = True, **kwargs: Any
    ) -> RenderedPrompt:
        """Fill in the variables and return the messages to send.

        Variables come as keywords, or as a mapping in the first argument (for
        names that clash with ``strict``). A variable the templates need but
        that is not given raises ``PromptError`` naming it; so does one given
        that no template reads, unless ``strict=False``. When a test case is
        running, the use of this template is recorded on it.
        """
        values: dict[str, Any] = {**(variables or {}), **kwargs}
        missing = self.variables - values.keys()
        unknown = values.keys() - self.variables
        if strict and unknown:
            raise PromptError(self._variables_message(missing, unknown), path=self.path)
        rendered = []
        for message, compiled in zip(self.messages, self._compiled, strict=True):
            try:
                content = compiled.render(values)
            except UndefinedError as exc:
                if missing:
                    raise PromptError(self._variables_message(missing, set()), path=self.path) from None
                raise PromptError(
                    f"prompt '{self.ref}' ({self.origin}): {exc.message} in `{message.field}`. "
                    "Pass a value that has this attribute or key, or change the template.",
                    path=self.path,
                ) from None
            except TemplateError as exc:
                raise PromptError(
                    f"prompt '{self.ref}' ({self.origin}): rendering `{message.field}` failed: {exc}. "
                    "Fix the template or the value passed to it.",
                    path=self.path,
                ) from None
            # Trimmed like the sources, so a loop's last newline does not end the message.
            rendered.append({"role": message.role, "content": content.strip()})
        record = current_case()
        if record is not None:
            record.add_prompt(PromptUse(self.name, self.version, self.hash))
        return RenderedPrompt(
            template_name=self.name,
            template_version=self.version,
            template_hash=self.hash,
            messages=tuple(rendered),
            params=MappingProxyType(_copy_params(self.params)),
        )

    def _variables_message(self, missing: set[str] | frozenset[str], unknown: set[str]) -> str:
        problems = []
        if missing:
            word = "variable" if len(missing) == 1 else "variables"
            problems.append(f"missing {word} {_names(repr(name) for name in missing)}")
        for name in sorted(unknown):
            close = difflib.get_close_matches(name, self.variables, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown variable '{name}'{hint}")
        needed = _names(self.variables)
        call = ", ".join(f"{name}=..." for name in sorted(self.variables))
        fix = (
            f'Call it as prompt("{self.name}", {call})'
            if call
            else f'Call it as prompt("{self.name}") with no variables'
        )
        if unknown:
            fix += "; to pass extra variables on purpose, use .render(..., strict=False)"
        return f"prompt '{self.ref}' ({self.origin}): {'; '.join(problems)}. It uses: {needed}. {fix}."


def _copy_params(params: Mapping[str, Any]) -> dict[str, Any]:
    # A list-valued parameter (stop) is copied so a caller cannot change the template's defaults.
    return {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in params.items()}


def _file_line(raw_lines: Sequence[str] | None, text: str) -> int | None:
    """The 1-based line of ``raw_lines`` that contains ``text`` (trimmed), if exactly one does."""
    if raw_lines is None or not text.strip():
        return None
    hits = [number for number, line in enumerate(raw_lines, start=1) if text.strip() in line]
    return hits[0] if len(hits) == 1 else None


def build_template(
    *,
    name: str,
    version: str,
    path: Path | None,
    origin: str,
    description: str,
    params: Mapping[str, Any],
    messages: Sequence[MessageTemplate],
    examples: Sequence[Example] = (),
    raw_lines: Sequence[str] | None = None,
) -> PromptTemplate:
    """Compile validated parts into a ``PromptTemplate``; a Jinja syntax error becomes a ``PromptError``.

    ``raw_lines`` (the file's lines) lets a syntax error point at the line in
    the file as well as the line within the template text.
    """
    compiled = []
    variables: set[str] = set()
    for message in messages:
        try:
            compiled.append(compile_source(message.source))
            variables |= undeclared_variables(message.source)
        except TemplateSyntaxError as exc:
            source_lines = message.source.splitlines()
            bad = source_lines[exc.lineno - 1] if 0 < exc.lineno <= len(source_lines) else ""
            file_line = _file_line(raw_lines, bad)
            where = f"{origin}:{file_line}" if file_line else origin
            raise PromptError(
                f"{where}: Jinja syntax error in `{message.field}`, line {exc.lineno} of that text: {exc.message}\n"
                f"    {bad.strip()}\n"
                "Fix the template: variables are written {{ name }}, tags {% if ... %}...{% endif %}; "
                "write {{ '{{' }} for a literal '{{'.",
                path=path,
                line=file_line,
            ) from None
    canonical = {
        "format": HASH_FORMAT,
        "name": name,
        "version": version,
        "messages": [{"role": message.role, "content": message.source} for message in messages],
        "params": dict(params),
    }
    return PromptTemplate(
        name=name,
        version=version,
        path=path,
        description=description,
        params=MappingProxyType(dict(params)),
        variables=frozenset(variables),
        hash=hashlib.sha256(_canonical_json(canonical)).hexdigest(),
        messages=tuple(messages),
        examples=tuple(examples),
        _compiled=tuple(compiled),
    )
