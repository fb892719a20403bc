"""Structured-output checks: JSON validity, JSON Schema (jsonschema), pydantic models.

Each check has two forms: ``validate_*`` returns ``(score, value)`` where
``value`` is the parsed JSON or the validated model (``None`` on failure),
and the plain form returns the score only. Failures say where: the line and
column of a JSON syntax error, the JSON path (``$.items[0].price``) of each
schema or model error.

Model answers often wrap JSON in a Markdown code fence (```` ```json ````);
that is a failure by default, with a reason that says so, and accepted with
``allow_code_fence=True``.
"""

from __future__ import annotations

import json
import re
import threading
import types
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_llmops.metrics._deps import require, signature
from pytest_llmops.verdict import Score

#: How many errors a failure reason lists (all of them are in ``details``).
MAX_LISTED_ERRORS = 8

_FENCE = re.compile(r"\A\s*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\r?\n?```\s*\Z", re.DOTALL)

_validators: dict[str, Any] = {}
_validators_lock = threading.Lock()


def json_path(parts: Iterable[Any]) -> str:
    """A JSON path for a location such as ``("items", 0, "price")``: ``$.items[0].price``."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(str(part))}]"
    return path


def _unfence(text: str, allow_code_fence: bool) -> tuple[str, str | None]:
    """(text to parse, a failure reason if fenced output is not allowed)."""
    match = _FENCE.match(text)
    if match is None:
        return text, None
    if allow_code_fence:
        return match.group(2), None
    return text, "the output is wrapped in a Markdown code fence (```); pass allow_code_fence=True to accept that"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def _parse(output: Any, allow_code_fence: bool) -> tuple[Any, str | None, dict[str, Any]]:
    """(parsed value, failure reason or None, details)."""
    if isinstance(output, (dict, list)):
        return output, None, {}
    if not isinstance(output, str):
        raise TypeError(f"output must be a JSON str (or an already parsed dict or list), got {type(output).__name__}")
    text, fence_reason = _unfence(output, allow_code_fence)
    if fence_reason:
        return None, fence_reason, {"fenced": True}
    if not text.strip():
        return None, "the output is empty, not JSON", {}
    try:
        return json.loads(text, parse_constant=_reject_constant), None, {}
    except json.JSONDecodeError as error:
        line = text.splitlines()[error.lineno - 1] if text.splitlines() else ""
        pointer = f"\n    {line[:120]}\n    {' ' * min(error.colno - 1, 120)}^"
        reason = f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}{pointer}"
        return None, reason, {"line": error.lineno, "column": error.colno, "error": error.msg}
    except ValueError as error:
        return None, str(error), {}


def validate_json(output: Any, *, allow_code_fence: bool = False) -> tuple[Score, Any]:
    """Whether ``output`` is valid JSON; returns ``(score, parsed value or None)``."""
    value, reason, details = _parse(output, allow_code_fence)
    sig = signature("json", {"fence": "allowed" if allow_code_fence else "refused"}, ())
    ok = reason is None
    score = Score.measured(
        "json_valid", 1.0 if ok else 0.0, threshold=1.0, reason=reason or "valid JSON", signature=sig, details=details
    )
    return score, value if ok else None


def json_valid(output: Any, *, allow_code_fence: bool = False) -> Score:
    """1.0 if ``output`` is valid JSON, else 0.0 with the line and column of the error."""
    return validate_json(output, allow_code_fence=allow_code_fence)[0]


def _validator(schema: Mapping[str, Any] | bool, check_formats: bool) -> Any:
    jsonschema = require("jsonschema", "jsonschema", purpose="JSON Schema validation")
    try:
        key = json.dumps(schema, sort_keys=True) + f"|{check_formats}"
    except TypeError as error:
        raise TypeError(f"schema must be JSON data (dicts, lists, strings, numbers): {error}") from error
    validator = _validators.get(key)
    if validator is not None:
        return validator
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        where = json_path(error.absolute_path)
        raise ValueError(f"the JSON Schema itself is invalid at {where}: {error.message}") from error
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER if check_formats else None)
    with _validators_lock:
        _validators[key] = validator
    return validator


def validate_json_schema(
    output: Any,
    schema: Mapping[str, Any] | bool,
    *,
    allow_code_fence: bool = False,
    check_formats: bool = False,
) -> tuple[Score, Any]:
    """Whether ``output`` parses as JSON and satisfies ``schema``; returns ``(score, parsed or None)``.

    The schema's ``$schema`` picks the draft (latest when absent).
    ``check_formats`` also enforces ``format`` (email, date, ...), which
    JSON Schema treats as an annotation by default.
    """
    if not isinstance(schema, (Mapping, bool)):
        raise TypeError(f"schema must be a dict (a JSON Schema), got {type(schema).__name__}")
    validator = _validator(schema, check_formats)
    sig = signature(
        "json_schema",
        {
            "draft": type(validator).__name__,
            "formats": check_formats,
            "fence": "allowed" if allow_code_fence else "refused",
        },
        ("jsonschema",),
    )
    value, reason, details = _parse(output, allow_code_fence)
    if reason is not None:
        return Score.measured("json_schema", 0.0, threshold=1.0, reason=reason, signature=sig, details=details), None
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return Score.measured("json_schema", 1.0, threshold=1.0, reason="matches the schema", signature=sig), value
    listed = [f"{json_path(e.absolute_path)}: {e.message}" for e in errors]
    reason = f"{len(errors)} schema error(s): " + "; ".join(listed[:MAX_LISTED_ERRORS])
    if len(listed) > MAX_LISTED_ERRORS:
        reason += f"; ... and {len(listed) - MAX_LISTED_ERRORS} more"
    details = {
        "errors": [
            {
                "path": json_path(e.absolute_path),
                "message": e.message,
                "validator": e.validator,
                "schema_path": json_path(e.absolute_schema_path),
            }
            for e in errors
        ]
    }
    return Score.measured("json_schema", 0.0, threshold=1.0, reason=reason, signature=sig, details=details), None


def json_schema_valid(
    output: Any, schema: Mapping[str, Any] | bool, *, allow_code_fence: bool = False, check_formats: bool = False
) -> Score:
    """1.0 if ``output`` satisfies ``schema``, else 0.0 listing each error with its JSON path."""
    return validate_json_schema(output, schema, allow_code_fence=allow_code_fence, check_formats=check_formats)[0]


def _type_name(model: Any) -> str:
    """``Item`` for a class, ``list[Item]`` for a generic alias (module prefixes dropped)."""
    if isinstance(model, type) and not isinstance(model, types.GenericAlias):
        return model.__name__
    return re.sub(r"\b(?:[A-Za-z_][\w]*\.)+([A-Za-z_]\w*)", r"\1", repr(model))


def validate_pydantic(
    output: Any,
    model: Any,
    *,
    strict: bool = False,
    allow_code_fence: bool = False,
) -> tuple[Score, Any]:
    """Validate ``output`` (JSON text, or a parsed dict/list) against a pydantic model or type.

    ``model`` is a ``BaseModel`` subclass or any type pydantic's ``TypeAdapter``
    accepts (``list[Item]``, a ``TypedDict``, ...). Returns ``(score, instance or None)``.
    """
    pydantic = require("pydantic", "pydantic", purpose="pydantic validation")
    adapter = model if isinstance(model, type) and issubclass(model, pydantic.BaseModel) else None
    name = _type_name(model)
    sig = signature(
        "pydantic",
        {"model": name, "strict": strict, "fence": "allowed" if allow_code_fence else "refused"},
        ("pydantic",),
    )

    def fail(reason: str, details: Mapping[str, Any] | None = None) -> tuple[Score, Any]:
        return Score.measured("pydantic", 0.0, threshold=1.0, reason=reason, signature=sig, details=details), None

    if isinstance(output, str):
        text, fence_reason = _unfence(output, allow_code_fence)
        if fence_reason:
            return fail(fence_reason, {"fenced": True})
        # Report syntax errors with line and column, as json_valid does.
        _, syntax, details = _parse(text, True)
        if syntax is not None:
            return fail(syntax, details)
    elif not isinstance(output, (dict, list)):
        raise TypeError(f"output must be a JSON str (or an already parsed dict or list), got {type(output).__name__}")
    try:
        if adapter is not None:
            instance = (
                adapter.model_validate_json(text, strict=strict)
                if isinstance(output, str)
                else adapter.model_validate(output, strict=strict)
            )
        else:
            type_adapter = pydantic.TypeAdapter(model)
            instance = (
                type_adapter.validate_json(text, strict=strict)
                if isinstance(output, str)
                else type_adapter.validate_python(output, strict=strict)
            )
    except pydantic.ValidationError as error:
        errors = error.errors(include_url=False)
        listed = [f"{json_path(e['loc'])}: {e['msg']}" for e in errors]
        reason = f"{len(errors)} validation error(s) for {name}: " + "; ".join(listed[:MAX_LISTED_ERRORS])
        if len(listed) > MAX_LISTED_ERRORS:
            reason += f"; ... and {len(listed) - MAX_LISTED_ERRORS} more"
        return fail(
            reason, {"errors": [{"path": json_path(e["loc"]), "message": e["msg"], "type": e["type"]} for e in errors]}
        )
    return Score.measured("pydantic", 1.0, threshold=1.0, reason=f"valid {name}", signature=sig), instance


def pydantic_valid(output: Any, model: Any, *, strict: bool = False, allow_code_fence: bool = False) -> Score:
    """1.0 if ``output`` validates as ``model``, else 0.0 listing each error with its JSON path."""
    return validate_pydantic(output, model, strict=strict, allow_code_fence=allow_code_fence)[0]
