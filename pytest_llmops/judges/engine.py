"""The judge engine: render a judge template, ask, validate, re-ask once, or give up unmeasured.

One ``ask`` is one judgement:

1. the template is rendered through the prompt layer with every value
   escaped (``guard.escape_block``), so the text under evaluation stays
   inside its tagged block;
2. JSON is requested: ``response_format`` with the answer's JSON Schema where
   the provider takes it, and always by the template's own instructions;
3. the reply is checked: a refusal ends the judgement; a reply that does not
   match the schema (or the metric's own shape check) gets exactly one
   re-ask quoting the error; a second bad reply ends it; an answer that
   contradicts itself (score says pass, verdict says fail) ends it too.

"Ends" means ``UnmeasuredError`` with the reason; metrics turn that into an
unmeasured ``Score``. Judge calls go through the judge client, so with the
client's cache a repeated judgement (same judge, template and input) is
answered from the cache without calling the provider.

The judge is any object with ``async def complete(prompt, **params)``
returning text; an ``LLMClient`` (the ``judge`` fixture) also gives
log-probabilities and the call record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_llmops.judges.guard import escape_block
from pytest_llmops.judges.templates import JudgeTemplate
from pytest_llmops.verdict import UnmeasuredError

__all__ = [
    "NO_JUDGE",
    "JudgeReply",
    "ask",
    "judge_name",
    "looks_like_refusal",
    "structured_output_mode",
]

NO_JUDGE = (
    "no judge is configured: set `llmops_judge` in [tool.pytest.ini_options] "
    "or pass --llmops-judge=MODEL, and request the `judge` fixture"
)

#: Model prefixes whose providers take ``response_format`` with a JSON Schema (see FACTS.md).
SCHEMA_PREFIXES = (
    "openai/",
    "hosted_vllm/",
    "azure/",
    "gpt-",
    "o1",
    "o3",
    "o4",
    "local/",
)

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,? (but )?i|i (cannot|can't|can not|won't|will not|am unable|'m unable|must decline)"
    r"|as an ai\b|unfortunately,? i (cannot|can't)|i'?m not able to|i do not feel comfortable)",
    re.IGNORECASE,
)

#: A metric's own check of an answer's shape (e.g. one verdict per claim); a message counts as malformed.
ShapeCheck = Callable[[Any, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class JudgeReply:
    """A validated judge answer and how it was obtained."""

    answer: Any
    text: str
    attempts: int
    structured: str
    logprobs: tuple[Any, ...] | None = None
    cache_hits: int = 0


def judge_name(judge: Any) -> str:
    """The judge's model name for signatures (``none`` for no judge)."""
    if judge is None:
        return "none"
    model = getattr(judge, "model", None)
    if isinstance(model, str) and model:
        return model
    name = getattr(judge, "name", None)
    return name if isinstance(name, str) and name else type(judge).__name__


def structured_output_mode(judge: Any, mode: str = "auto") -> str:
    """``response_format`` or ``instructions``: how JSON is asked of this judge.

    ``mode`` is ``auto`` (by the model's provider prefix), ``response_format``
    or ``instructions`` (never send ``response_format``).
    """
    if mode not in ("auto", "response_format", "instructions"):
        raise ValueError(f"response_format mode must be 'auto', 'response_format' or 'instructions', got {mode!r}")
    if mode != "auto":
        return mode
    model = getattr(judge, "model", None)
    if isinstance(model, str) and model.startswith(SCHEMA_PREFIXES):
        return "response_format"
    return "instructions"


def looks_like_refusal(text: str) -> bool:
    """Whether a reply that holds no JSON object reads as a refusal to judge."""
    return "{" not in text and bool(_REFUSAL.search(text.strip()[:300]))


def extract_json(text: str) -> str:
    """The JSON object in a reply: code fences and text around the outermost braces dropped."""
    stripped = _FENCE.sub("", text.strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if start == -1 or end < start:
        return stripped
    return stripped[start : end + 1]


def _escape(value: Any) -> Any:
    """``value`` with every text in it escaped; retrieved chunks (``{"text": ...}``, ``.text``) become their text."""
    if isinstance(value, str):
        return escape_block(value)
    if isinstance(value, (list, tuple)):
        return [_escape(item) for item in value]
    text = value.get("text") if isinstance(value, Mapping) else getattr(value, "text", None)
    if isinstance(text, str):
        return escape_block(text)
    return value


def _short_error(error: Any) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "answer"
        parts.append(f"{where}: {item.get('msg', '')}")
    return "; ".join(parts)


def _refused_response_format(error: UnmeasuredError, request: Mapping[str, Any]) -> bool:
    """Whether a provider error is a 400 that rejects the ``response_format`` we sent."""
    if "response_format" not in request or getattr(error, "status", None) not in (
        400,
        422,
    ):
        return False
    return bool(re.search(r"response_format|json_schema|structured output", str(error), re.IGNORECASE))


def _response_format(template: JudgeTemplate) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": template.kind,
            "schema": template.schema.model_json_schema(),
            "strict": False,
        },
    }


async def ask(
    judge: Any,
    template: JudgeTemplate,
    variables: Mapping[str, Any],
    *,
    check: ShapeCheck | None = None,
    logprobs: int = 0,
    response_format: str = "auto",
    params: Mapping[str, Any] | None = None,
) -> JudgeReply:
    """Ask ``judge`` one judgement with ``template`` and return the validated answer.

    ``logprobs`` > 0 asks for that many top log-probabilities per token (when
    the judge is a model client; ignored by plain judges). ``params`` are extra
    request parameters (e.g. ``seed``). Raises ``UnmeasuredError`` for no
    judge, a provider failure, a refusal, a malformed answer after one re-ask,
    or a self-contradicting answer.
    """
    from pydantic import ValidationError

    if judge is None:
        raise UnmeasuredError(NO_JUDGE)
    rendered = template.prompt.render({k: _escape(v) for k, v in variables.items()}, strict=False)
    messages: list[dict[str, Any]] = rendered.to_messages()
    request: dict[str, Any] = {
        "temperature": 0.0,
        **dict(rendered.params),
        **dict(params or {}),
    }
    structured = structured_output_mode(judge, response_format)
    if structured == "response_format":
        request["response_format"] = _response_format(template)
    if logprobs > 0 and hasattr(judge, "config"):  # a model client: providers return logprobs on request
        request.update(logprobs=True, top_logprobs=min(int(logprobs), 20))
    error_text = ""
    cache_hits = 0
    for attempt in (1, 2):
        try:
            reply = await judge.complete(messages, **request)
        except UnmeasuredError as error:
            if not _refused_response_format(error, request):
                raise
            # The provider does not take response_format: the template's instructions carry the schema.
            del request["response_format"]
            structured = "instructions (response_format refused)"
            reply = await judge.complete(messages, **request)
        if not isinstance(reply, str):
            raise UnmeasuredError(f"the judge returned {type(reply).__name__}, not text")
        call = getattr(reply, "call", None)
        cache_hits += int(bool(getattr(call, "cache_hit", False)))
        if getattr(reply, "finish_reason", None) == "content_filter" or looks_like_refusal(reply):
            raise UnmeasuredError(f"the judge refused to judge: {str(reply).strip()[:200]!r}")
        try:
            answer = template.schema.model_validate_json(extract_json(reply))
        except ValidationError as error:
            error_text = _short_error(error)
        else:
            problem = check(answer, variables) if check is not None else None
            if problem is None:
                contradiction = answer.contradiction(variables)
                if contradiction is not None:
                    raise UnmeasuredError(
                        f"the judge contradicted itself ({contradiction}); its verdict is not trusted"
                    )
                return JudgeReply(
                    answer=answer,
                    text=str(reply),
                    attempts=attempt,
                    structured=structured,
                    logprobs=getattr(reply, "logprobs", None),
                    cache_hits=cache_hits,
                )
            error_text = problem
        if attempt == 1:
            messages = [
                *messages,
                {"role": "assistant", "content": str(reply)},
                {
                    "role": "user",
                    "content": f"That answer is not valid: {error_text}\n"
                    "Reply again with only the JSON object, matching this JSON Schema:\n"
                    f"{json.dumps(template.schema.model_json_schema(), sort_keys=True)}",
                },
            ]
    raise UnmeasuredError(
        f"the judge's answer did not match the {template.name!r} schema after one re-ask: {error_text}"
    )
