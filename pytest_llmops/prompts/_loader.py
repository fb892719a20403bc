"""Reading prompt template files (TOML) and checking them field by field.

Every problem becomes a ``PromptError`` that names the file, the line where
one can be found, what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmops.prompts._template import Example, MessageTemplate, PromptError, PromptTemplate, build_template

__all__ = ["ALLOWED_KEYS", "PARAM_KEYS", "load_template", "template_from_string"]

#: Default sampling parameters a template may set, in the order they are documented.
PARAM_KEYS = ("temperature", "max_tokens", "top_p", "stop", "seed")
ALLOWED_KEYS = ("name", "version", "description", "system", "template", "messages", "examples", *PARAM_KEYS)
ROLES = ("system", "developer", "user", "assistant")

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class _Source:
    """Where the data came from, for error messages: a file (with its lines) or an inline template."""

    def __init__(self, origin: str, path: Path | None, raw: str | None) -> None:
        self.origin = origin
        self.path = path
        self.lines = raw.splitlines() if raw is not None else None

    def key_line(self, key: str) -> int | None:
        """The line on which top-level ``key = ...`` is set, when the file says it once."""
        if self.lines is None:
            return None
        pattern = re.compile(
            rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=|^\s*\[\[?\s*{re.escape(key)}\s*\]"
        )
        hits = [number for number, line in enumerate(self.lines, start=1) if pattern.match(line)]
        return hits[0] if hits else None

    def error(self, message: str, key: str | None = None) -> PromptError:
        line = self.key_line(key) if key else None
        where = f"{self.origin}:{line}" if line else self.origin
        return PromptError(f"{where}: {message}", path=self.path, line=line)


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _toml_literal(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _normalise(text: str) -> str:
    # The TOML layout (a newline after the opening quotes, a trailing one before the closing
    # quotes, Windows line ends) is not part of the prompt: hash and render the text without it.
    return text.replace("\r\n", "\n").strip()


def _check_params(data: Mapping[str, Any], src: _Source) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "temperature" in data:
        value = data["temperature"]
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            raise src.error(
                f"`temperature` must be a number >= 0, got {_type_name(value)} {value!r}. "
                "Write it without quotes, e.g. temperature = 0.2.",
                "temperature",
            )
        params["temperature"] = float(value)  # 0 and 0.0 are the same setting and hash the same
    if "top_p" in data:
        value = data["top_p"]
        if not _is_number(value) or not 0 <= value <= 1:
            raise src.error(
                f"`top_p` must be a number from 0 to 1, got {_type_name(value)} {value!r}. Write e.g. top_p = 0.9.",
                "top_p",
            )
        params["top_p"] = float(value)
    for key, minimum, example in (("max_tokens", 1, 256), ("seed", None, 42)):
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
                need = "a whole number >= 1" if minimum else "a whole number"
                raise src.error(
                    f"`{key}` must be {need}, got {_type_name(value)} {value!r}. Write e.g. {key} = {example}.",
                    key,
                )
            params[key] = value
    if "stop" in data:
        value = data["stop"]
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not stops or not all(isinstance(s, str) and s for s in stops):
            raise src.error(
                f"`stop` must be a non-empty string or an array of them, got {value!r}. "
                'Write e.g. stop = ["\\n\\n", "Question:"].',
                "stop",
            )
        params["stop"] = tuple(stops)
    return params


def _text_field(data: Mapping[str, Any], key: str, src: _Source) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str):
        if isinstance(value, (list, dict)):
            fix = f'Write it as {key} = """..."""'
        else:
            fix = f"Quote it: {key} = {_toml_literal(str(value))}"
        raise src.error(f"`{key}` must be a string, got {_type_name(value)} {value!r}. {fix}.", key)
    return value


def _check_examples(value: Any, src: _Source) -> list[Example]:
    fix = 'Write each one as\n    [[examples]]\n    user = "..."\n    assistant = "..."'
    if not isinstance(value, list):
        raise src.error(f"`examples` must be an array of tables, got {_type_name(value)}. {fix}", "examples")
    examples = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise src.error(
                f"examples[{index}] must be a table with `user` and `assistant`, got {_type_name(item)}. {fix}",
                "examples",
            )
        extra = sorted(item.keys() - {"user", "assistant"})
        missing = sorted({"user", "assistant"} - item.keys())
        if extra or missing:
            problem = f"has unknown key(s) {', '.join(extra)}" if extra else f"lacks {' and '.join(missing)}"
            raise src.error(
                f"examples[{index}] {problem}; an example has exactly `user` and `assistant`. {fix}", "examples"
            )
        for key in ("user", "assistant"):
            if not isinstance(item[key], str):
                raise src.error(
                    f"examples[{index}].{key} must be a string, got {_type_name(item[key])}. {fix}", "examples"
                )
        examples.append(Example(_normalise(item["user"]), _normalise(item["assistant"])))
    return examples


def _check_messages(value: Any, src: _Source) -> list[MessageTemplate]:
    fix = 'Write messages = [{role = "system", content = "..."}, {role = "user", content = "{{ question }}"}].'
    if not isinstance(value, list) or not value:
        raise src.error(f"`messages` must be a non-empty array of tables, got {value!r}. {fix}", "messages")
    messages = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict) or item.keys() != {"role", "content"}:
            raise src.error(
                f"messages[{index}] must be a table with exactly `role` and `content`, got {item!r}. {fix}", "messages"
            )
        if item["role"] not in ROLES:
            close = difflib.get_close_matches(str(item["role"]), ROLES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise src.error(
                f"messages[{index}].role is {item['role']!r}; it must be one of {', '.join(ROLES)}.{hint}", "messages"
            )
        if not isinstance(item["content"], str):
            raise src.error(
                f"messages[{index}].content must be a string, got {_type_name(item['content'])}. {fix}", "messages"
            )
        messages.append(MessageTemplate(item["role"], _normalise(item["content"]), f"messages[{index}].content"))
    return messages


def _place_examples(messages: list[MessageTemplate], examples: Sequence[Example]) -> list[MessageTemplate]:
    """Insert the examples as user/assistant pairs just before the last user message."""
    last_user = max(index for index, message in enumerate(messages) if message.role == "user")
    pairs = []
    for number, example in enumerate(examples, start=1):
        pairs.append(MessageTemplate("user", example.user, f"examples[{number}].user"))
        pairs.append(MessageTemplate("assistant", example.assistant, f"examples[{number}].assistant"))
    return [*messages[:last_user], *pairs, *messages[last_user:]]


def _build(data: Mapping[str, Any], src: _Source, *, stem: str | None) -> PromptTemplate:
    unknown = sorted(data.keys() - set(ALLOWED_KEYS))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, ALLOWED_KEYS, n=1)
        hint = f"Did you mean `{close[0]}`? " if close else ""
        raise src.error(
            f"unknown key `{key}`. {hint}A prompt template may set only: {', '.join(ALLOWED_KEYS)}.",
            key,
        )

    name = _text_field(data, "name", src)
    if name is not None and stem is not None and name != stem:
        raise src.error(
            f"`name` is {name!r} but the file is {src.path.name if src.path else stem!r}: the file name is the "
            f'prompt\'s name. Rename the file to {name}.toml, or set name = "{stem}" (or remove `name`).',
            "name",
        )
    name = name if name is not None else stem
    if not name or "@" in name or "/" in name:
        raise src.error(f"the prompt name {name!r} is not usable: give a non-empty name without '@' or '/'.", "name")

    if "version" not in data:
        raise src.error(
            'missing `version`. Add a line such as version = "1" (a string) '
            "and change it whenever you change the prompt."
        )
    version = data["version"]
    if not isinstance(version, str) or not version.strip():
        raise src.error(
            f"`version` must be a non-empty string, got {_type_name(version)} {version!r}. "
            f"Quote it: version = {_toml_literal(str(version) or '1')}.",
            "version",
        )
    description = _text_field(data, "description", src) or ""
    params = _check_params(data, src)

    system = _text_field(data, "system", src)
    template = _text_field(data, "template", src)
    examples = _check_examples(data["examples"], src) if "examples" in data else []
    if "messages" in data:
        if template is not None or system is not None:
            both = "template" if template is not None else "system"
            raise src.error(
                f"has both `messages` and `{both}`; use one form. Either `system` + `template` (+ `examples`), "
                f"or `messages` for the whole conversation (move the {both} text into a message there).",
                both,
            )
        messages = _check_messages(data["messages"], src)
        if examples and not any(message.role == "user" for message in messages):
            raise src.error(
                "`examples` go before the last user message, but `messages` has no user message. "
                "Add one, or write the examples into `messages` yourself.",
                "examples",
            )
    elif template is None:
        raise src.error(
            'missing `template`. Add the user message, e.g. template = """Question: {{ question }}""" '
            '(Jinja2 syntax), or give the whole conversation as messages = [{role = "user", content = "..."}].'
        )
    else:
        messages = [MessageTemplate("user", _normalise(template), "template")]
        if system is not None:
            messages.insert(0, MessageTemplate("system", _normalise(system), "system"))
    if examples:
        messages = _place_examples(messages, examples)

    return build_template(
        name=name,
        version=version.strip(),
        path=src.path,
        origin=src.origin,
        description=description.strip(),
        params=params,
        messages=messages,
        examples=examples,
        raw_lines=src.lines,
    )


def load_template(path: Path | str) -> PromptTemplate:
    """Read and check one prompt template file (TOML); raises ``PromptError`` when it is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise PromptError(
            f"{path}: no such prompt template file. Check the path or create the file.", path=path
        ) from None
    except IsADirectoryError:
        raise PromptError(f"{path}: is a folder, not a prompt template file. Give a .toml file.", path=path) from None
    except OSError as exc:
        raise PromptError(f"{path}: cannot be read ({exc.strerror}). Check its permissions.", path=path) from None
    except UnicodeDecodeError as exc:
        raise PromptError(f"{path}: is not UTF-8 text (byte {exc.start}). Save it as UTF-8.", path=path) from None
    src = _Source(str(path), path, raw)
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, src) from None
    return _build(data, src, stem=path.stem)


def _toml_error(exc: tomllib.TOMLDecodeError, src: _Source) -> PromptError:
    message = str(exc)
    match = _TOML_POSITION.search(message)
    fix = 'Fix the TOML syntax there (multi-line text goes between triple quotes: template = """...""").'
    if match is None:
        return PromptError(f"{src.origin}: not valid TOML: {message}. {fix}", path=src.path)
    line, column = int(match.group(1)), int(match.group(2))
    text = src.lines[line - 1] if src.lines and line <= len(src.lines) else ""
    pointer = f"\n    {text}\n    {' ' * (column - 1)}^" if text else ""
    return PromptError(
        f"{src.origin}:{line}:{column}: not valid TOML: {message[: match.start()]}{pointer}\n{fix}",
        path=src.path,
        line=line,
    )


def template_from_string(
    name: str,
    template: str,
    *,
    version: str = "0",
    system: str | None = None,
    examples: Sequence[tuple[str, str] | Mapping[str, str]] = (),
    description: str = "",
    **params: Any,
) -> PromptTemplate:
    """Build a template in code, for inline prompts in tests; checked like a file.

    ``params`` are default sampling parameters (``temperature``, ``max_tokens``,
    ``top_p``, ``stop``, ``seed``); ``examples`` are ``(user, assistant)``
    pairs or ``{"user": ..., "assistant": ...}`` mappings.
    """
    data: dict[str, Any] = {
        "name": name,
        "version": version,
        "template": template,
        "description": description,
        **params,
    }
    if system is not None:
        data["system"] = system
    if examples:
        data["examples"] = [
            dict(example) if isinstance(example, Mapping) else {"user": example[0], "assistant": example[1]}
            for example in examples
        ]
    if isinstance(params.get("stop"), tuple):
        data["stop"] = list(params["stop"])
    return _build(data, _Source(f"inline prompt {name!r}", None, None), stem=None)
