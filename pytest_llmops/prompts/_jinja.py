"""The Jinja2 environment prompt templates render in.

Templates are data, possibly written by people who do not write the code, so
they run in Jinja's immutable sandbox: no access to ``_private`` attributes,
no calling of unsafe methods, no mutating the values passed in. Undefined
variables are errors (``StrictUndefined``) rather than empty strings, and
nothing is HTML-escaped.

Two conveniences for retrieval-augmented prompts, both documented in the
package docstring:

- the ``chunks`` filter joins a list of retrieved chunks (strings, objects with
  a ``.text`` attribute, or mappings with a ``"text"`` key) with blank lines;
- a bare ``{{ context }}`` whose value is such a list renders the same way,
  and an object with a ``.text`` attribute renders as its text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import meta as jinja_meta
from jinja2.exceptions import FilterArgumentError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["ENV", "chunks", "compile_source", "undeclared_variables"]


def _as_text(item: Any) -> str | None:
    """The text of one retrieved chunk, or ``None`` when ``item`` is not text-like."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        text = item.get("text")
        return text if isinstance(text, str) else None
    text = getattr(item, "text", None)
    return text if isinstance(text, str) else None


def chunks(value: Any, sep: str = "\n\n", numbered: bool = False) -> str:
    """Jinja filter: join retrieved chunks into one block of text.

    Each item may be a string, an object with a ``.text`` attribute or a
    mapping with a ``"text"`` key; its surrounding whitespace is trimmed and the
    items are joined with ``sep`` (a blank line by default). ``numbered=True``
    prefixes ``[1]``, ``[2]``, ... so the model can cite its sources.
    ``{{ context | chunks }}``, ``{{ docs | chunks(numbered=true) }}``.
    """
    single = _as_text(value)
    if single is None and isinstance(value, Mapping):
        raise FilterArgumentError("the chunks filter got a mapping without a 'text' key; give it a list of texts")
    items = [value] if single is not None else value
    try:
        items = list(items)
    except TypeError:
        raise FilterArgumentError(f"the chunks filter needs a list of texts, got {type(value).__name__}") from None
    texts = []
    for index, item in enumerate(items):
        text = _as_text(item)
        if text is None:
            raise FilterArgumentError(
                f"the chunks filter got a {type(item).__name__} at position {index}; "
                "give it strings, objects with a .text attribute, or mappings with a 'text' key"
            )
        texts.append(text.strip())
    if numbered:
        texts = [f"[{number}] {text}" for number, text in enumerate(texts, start=1)]
    return sep.join(texts)


def _finalize(value: Any) -> Any:
    """Make ``{{ value }}`` render lists of chunks and ``.text`` objects as text, not reprs."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if all(_as_text(item) is not None for item in value):
            return chunks(value)
        return value
    text = _as_text(value) if not isinstance(value, Mapping) else None
    return text if text is not None else value


ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    # Prompt files are indented for readability; keep block tags from leaving blank lines.
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
    finalize=_finalize,
)
ENV.filters["chunks"] = chunks


def compile_source(source: str) -> Template:
    """Compile one message template; raises ``jinja2.TemplateSyntaxError`` on bad syntax."""
    return ENV.from_string(source)


def undeclared_variables(source: str) -> frozenset[str]:
    """The variables ``source`` reads that it does not set itself."""
    return frozenset(jinja_meta.find_undeclared_variables(ENV.parse(source)))
