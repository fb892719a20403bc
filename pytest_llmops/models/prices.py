"""Prices of calls that did not go through litellm, priced by litellm all the same.

The direct OpenAI-compatible backend (``openai_http.py``) never imports
litellm for a model litellm cannot price: most self-hosted names (``openai/my-llama``
at a vLLM base) are unknown to it, and its import costs seconds. Which names
it may price is read from the price table litellm ships as data
(``model_prices_and_context_window_backup.json``, found without importing the
package). For such a name litellm is imported once, before the first timed
call (``prepare``), and its own cost functions price the raw answer, so a
priced model costs the same on both paths; a name it does not know is
``None`` (unknown), never 0.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

#: The price table inside the litellm package (data, read without importing litellm).
PRICE_TABLE = "model_prices_and_context_window_backup.json"


@lru_cache(maxsize=1)
def _table_path() -> Path | None:
    """Where litellm's shipped price table is (``None`` if it cannot be found)."""
    spec = importlib.util.find_spec("litellm")
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / PRICE_TABLE
        if path.is_file():
            return path
    return None


def _table_text() -> bytes:
    """litellm's shipped price table as raw bytes (empty if it cannot be found).

    Read again for each model name asked about (``may_be_priced`` keeps the answers), not
    kept: the table is ~3.5 MB, and a run asks about a handful of names.
    """
    path = _table_path()
    if path is None:
        return b""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _candidates(model: str) -> set[str]:
    wire = model.split("/", 1)[1] if "/" in model else model
    names = {model, wire}
    if wire.startswith("ft:"):
        # A fine-tuned model ("ft:gpt-4o-mini-2024-07-18:org::id") is priced as its base entry.
        names.add(":".join(wire.split(":")[:2]))
    return names


@lru_cache(maxsize=256)
def may_be_priced(model: str) -> bool:
    """Whether litellm's price table mentions ``model`` (litellm then decides the price itself).

    A quoted search of the raw table (a few ms) instead of parsing it (~50 ms): every
    model key appears quoted, so a name litellm prices is never missed; a name that
    only appears as a value costs a litellm import, and litellm answers exactly.
    """
    text = _table_text()
    return any(b'"' + name.encode() + b'"' in text for name in _candidates(model))


def prepare(model: str) -> None:
    """Import litellm now if ``model`` may be priced, so the import is not inside a timed call."""
    if may_be_priced(model):
        from pytest_llmops.models.litellm_backend import load_litellm

        load_litellm()


def _litellm_or_none(model: str) -> Any:
    if not may_be_priced(model):
        return None
    from pytest_llmops.models.litellm_backend import load_litellm

    return load_litellm()


def chat_cost(model: str, answer: Mapping[str, Any]) -> float | None:
    """USD of a chat completion answer (the provider's JSON), or ``None`` when litellm has no price."""
    litellm = _litellm_or_none(model)
    if litellm is None:
        return None
    try:
        return float(litellm.completion_cost(completion_response=litellm.ModelResponse(**answer), model=model))
    except Exception:  # noqa: BLE001 - litellm raises for a model it cannot price
        return None


def priced_tokens(litellm: Any, model: str, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """USD of ``tokens_in`` prompt and ``tokens_out`` completion tokens by litellm's ``cost_per_token``.

    How both backends price a streamed answer, which has usage but no response object.
    """
    if tokens_in is None or tokens_out is None:
        return None
    try:
        prompt, completion = litellm.cost_per_token(model=model, prompt_tokens=tokens_in, completion_tokens=tokens_out)
        return float(prompt + completion)
    except Exception:  # noqa: BLE001 - litellm raises for a model it has no price for
        return None


def token_cost(model: str, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """USD of a streamed answer's usage, or ``None`` when litellm has no price."""
    litellm = _litellm_or_none(model)
    return None if litellm is None else priced_tokens(litellm, model, tokens_in, tokens_out)


def embedding_cost(model: str, answer: Mapping[str, Any]) -> float | None:
    """USD of an embeddings answer (the provider's JSON), or ``None`` when litellm has no price."""
    litellm = _litellm_or_none(model)
    if litellm is None:
        return None
    try:
        response = litellm.EmbeddingResponse(**answer)
        return float(litellm.completion_cost(completion_response=response, model=model, call_type="embedding"))
    except Exception:  # noqa: BLE001 - litellm raises for a model it cannot price
        return None
