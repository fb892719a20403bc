"""The immutable record of one provider call.

Every request the model layer makes (chat, streamed chat, embeddings, reward scores), served
by the provider or by the cache, becomes one ``Call``. Budgets, the terminal
summary and the results file are all computed from these records. API keys
are never part of a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

CallKind = Literal["chat", "embedding", "reward"]
#: Which fixture the call was made through; budgets keep the model under test apart from the judge.
CallRole = Literal["llm", "judge", "paraphraser", "embedder", "reward", "other"]


@dataclass(frozen=True)
class Call:
    """One provider call, as measured.

    Timings are in seconds. ``latency_s`` is the successful attempt's time from
    request to full answer; time spent backing off between attempts is kept
    apart in ``backoff_s`` so latency budgets do not see it. ``cost_usd`` is
    ``None`` when the price of the model is unknown (never a made-up 0).
    On a cache hit the timings, tokens and cost are those recorded when the
    answer was first obtained, and ``cache_hit`` says so.

    A failed call's ``latency_s`` is its last attempt's time (``None`` when no
    request went out). ``attempt_log`` lists the attempts of a call that needed
    more than one (or failed): ``attempt``, ``elapsed_s``, and for each failed
    attempt its ``error_type`` and HTTP ``status`` (``None`` when it had none).
    """

    model: str
    kind: CallKind
    role: CallRole
    api_base: str | None
    params: Mapping[str, Any]
    prompt_hash: str
    cache_key: str
    started_at: float
    latency_s: float | None = None
    ttft_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    attempts: int = 1
    backoff_s: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    error_type: str | None = None
    nodeid: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    attempt_log: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        object.__setattr__(self, "attempt_log", tuple(MappingProxyType(dict(a)) for a in self.attempt_log))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def cost_known(self) -> bool:
        return self.cost_usd is not None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["params"] = dict(self.params)
        data["extra"] = dict(self.extra)
        data["attempt_log"] = [dict(a) for a in self.attempt_log]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Call:
        fields_ = dict(data)
        fields_["attempt_log"] = tuple(fields_.get("attempt_log") or ())
        return cls(**fields_)
