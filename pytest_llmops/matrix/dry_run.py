"""``--llmops-dry-run``: count the calls a run would make, and what they would cost, sending none.

The ``llm`` and ``judge`` fixtures hand out a ``DryRunClient``: each
``complete()`` builds the request exactly as a real call would (cache key
included), notes it in the run's plan and answers ``""`` without reaching
the provider. The test bodies run on those empty answers, so the checks
after a call fail; in a dry run every case ends skipped with the number of
calls it planned, and the terminal shows the plan per matrix cell. A
``reward()`` request is planned the same way (no output tokens) and ends its
check unmeasured, since no reward came back.

Limits: a test that decides its next call from the answer's content plans
the calls the empty answer leads to; embeddings are not counted. Input
tokens are estimated as characters / 4; output tokens as the request's
``max_tokens`` (an upper bound), so without ``max_tokens`` the cost stays
unknown, as it does for a model the price table does not know.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pytest_llmops.case import current_case
from pytest_llmops.models.client import Completion, LLMClient


class DryRunClient(LLMClient):
    """A client that plans calls instead of sending them."""

    def __init__(self, config: Any, runtime: Any, *, plan: list[dict[str, Any]]) -> None:
        super().__init__(config, runtime)
        self.plan = plan

    def with_params(self, **params: Any) -> DryRunClient:
        return DryRunClient(replace(self.config, params={**self.config.params, **params}), self.runtime, plan=self.plan)

    def _plan(self, model: str, key: str, chars: int, max_tokens: int | None) -> None:
        """Append one planned request: its case and cell, whether the cache holds it, tokens in (chars / 4)."""
        runtime = self.runtime
        case = current_case()
        matrix = (case.metadata.get("matrix") or {}) if case is not None else {}
        self.plan.append({
            "nodeid": case.nodeid if case is not None else None,
            "cell": matrix.get("cell"),
            "matrix": matrix.get("matrix"),
            "model": model,
            "role": self.config.role,
            "key": key,
            "cached": bool(runtime.cache is not None and runtime.record_mode.reads and runtime.cache.get(key) is not None),
            "tokens_in": math.ceil(chars / 4),
            "max_tokens": max_tokens,
        })

    def _planned(self, prompt: Any, params: Mapping[str, Any]) -> Completion:
        request = self._request(prompt, params)
        key = self._key("chat", {"messages": [dict(m) for m in request.messages], "params": dict(request.params)})
        chars = sum(len(str(message.get("content", ""))) for message in request.messages)
        max_tokens = request.params.get("max_tokens")
        self._plan(request.model, key, chars, int(max_tokens) if isinstance(max_tokens, int) else None)
        call = self._call_record(request, "chat", key, started_at=time.time(), attempts=0, extra={"dry_run": True})
        return Completion("", call=call, finish_reason="dry_run")

    async def complete(self, prompt: Any, *, stream: bool = False, **params: Any) -> Completion:
        return self._planned(prompt, params)

    async def reward(self, prompt: str, answer: str, *, api: str | None = None, **params: Any) -> Any:
        from pytest_llmops.verdict import UnmeasuredError

        request = self._reward_request(prompt, answer, api, params)
        self._plan(request.model, self._reward_key(request), len(prompt) + len(answer), 0)
        raise UnmeasuredError("dry run (--llmops-dry-run): the reward request was planned, not sent")

    async def stream(self, prompt: Any, **params: Any) -> AsyncIterator[str]:
        self._planned(prompt, params)
        if False:  # pragma: no cover - an async generator that yields nothing
            yield ""


@dataclass
class PlanRow:
    """The planned calls of one matrix cell (or of the cases outside any matrix)."""

    group: str
    calls: int = 0
    #: Calls that would go to the provider: not in the cache, and not a repeat of an identical request.
    to_send: int = 0
    cached: int = 0
    tokens_in: int = 0
    cost_usd: float | None = 0.0
    #: Why the cost is unknown (unpriced model, no max_tokens), when it is.
    unknown: str = ""


def summarize_plan(plan: Sequence[Mapping[str, Any]], price: Any = None) -> list[PlanRow]:
    """Group the planned calls by matrix cell, with requests to send and their estimated cost.

    ``price(model, tokens_in, tokens_out)`` returns USD or None (default: the
    price table litellm ships, through ``pytest_llmops.models.prices``).
    """
    if price is None:
        from pytest_llmops.models.local import MODELS as LOCAL_MODELS
        from pytest_llmops.models.prices import may_be_priced, token_cost

        def price(model: str, tokens_in: int, tokens_out: int) -> float | None:
            if model in LOCAL_MODELS:
                return 0.0  # the embedded model runs in this process: its calls record cost 0, a measured fact
            return token_cost(model, tokens_in, tokens_out) if may_be_priced(model) else None

    rows: dict[str, PlanRow] = {}
    seen: set[str] = set()
    prices: dict[tuple[str, int, int], float | None] = {}
    for entry in plan:
        group = f"{entry['matrix']} / {entry['cell']}" if entry.get("cell") else "(no matrix)"
        row = rows.setdefault(group, PlanRow(group))
        row.calls += 1
        if entry["cached"]:
            row.cached += 1
            continue
        if entry["key"] in seen:
            continue  # an identical request: answered by the cache or coalesced, never sent twice
        seen.add(entry["key"])
        row.to_send += 1
        row.tokens_in += entry["tokens_in"]
        if row.cost_usd is None:
            continue
        if entry["max_tokens"] is None:
            row.cost_usd, row.unknown = None, "no max_tokens, so the answer's length is unknown"
            continue
        args = (entry["model"], entry["tokens_in"], entry["max_tokens"])
        if args not in prices:
            prices[args] = price(*args)
        if prices[args] is None:
            row.cost_usd, row.unknown = None, f"no price for {entry['model']}"
        else:
            row.cost_usd += prices[args]  # type: ignore[operator]
    return list(rows.values())


def plan_lines(plan: Sequence[Mapping[str, Any]], price: Any = None) -> list[str]:
    """The dry run's report: one line per cell and a total."""
    rows = summarize_plan(plan, price)
    lines = [f"dry run: no call was sent. {len(plan)} calls planned (tokens in ~ characters / 4; cost at most "
             "max_tokens out, from the price table)"]
    width = max([len(r.group) for r in rows] + [5])
    lines.append(f"  {'cell':<{width}}  calls  to send  cached  tokens in  est. cost")
    for row in rows:
        cost = f"${row.cost_usd:.6f}" if row.cost_usd is not None else f"unknown ({row.unknown})"
        lines.append(f"  {row.group:<{width}}  {row.calls:>5}  {row.to_send:>7}  {row.cached:>6}  {row.tokens_in:>9}  {cost}")
    totals: dict[str, Any] = defaultdict(int)
    for row in rows:
        for name in ("calls", "to_send", "cached", "tokens_in"):
            totals[name] += getattr(row, name)
    known = [row.cost_usd for row in rows]
    total_cost = "unknown" if None in known else f"${sum(known):.6f}"  # type: ignore[arg-type]
    lines.append(f"  {'total':<{width}}  {totals['calls']:>5}  {totals['to_send']:>7}  {totals['cached']:>6}  "
                 f"{totals['tokens_in']:>9}  {total_cost}")
    return lines


def dry_body(item: Any, arguments: Mapping[str, Any], *, on_our_loop: bool, plan: list[dict[str, Any]]) -> Any:
    """The test's body for a dry run: every repetition run on empty answers, then the case skipped.

    Exceptions after an empty answer are expected (the checks see ``""``) and
    only named in the skip reason. Early stopping cannot be foreseen, so a
    repeated case plans all its repetitions: the count is an upper bound.
    """
    import inspect

    import pytest

    from pytest_llmops.case import sample_scope
    from pytest_llmops.repeat import plan_for

    marker = item.get_closest_marker("llm_eval")
    repeat_plan = plan_for(dict(marker.kwargs)) if marker is not None else None
    repeat = repeat_plan.repeat if repeat_plan is not None else 1
    before = len(plan)
    caught = (Exception, pytest.fail.Exception)

    def keep(error: BaseException, planned_before: int) -> BaseException:
        # An error before the repetition's first call is the suite's (a template, the test's code), not
        # the empty answer's: it ends the case as it would in a real run.
        if len(plan) == planned_before:
            raise error
        return error

    def verdict(error: BaseException | None) -> None:
        planned = len(plan) - before
        note = f"; on the empty answers the body raised {type(error).__name__}" if error is not None else ""
        pytest.skip(f"dry run: {planned} call{'s' if planned != 1 else ''} planned{note}")

    if inspect.iscoroutinefunction(item.obj):
        if not on_our_loop:
            return None

        async def run() -> None:
            error = None
            for index in range(repeat):
                with sample_scope(index):
                    start = len(plan)
                    try:
                        await item.obj(**arguments)
                    except caught as exc:
                        error = error or keep(exc, start)
            verdict(error)

        return run()

    def run_sync() -> None:
        error = None
        for index in range(repeat):
            with sample_scope(index):
                start = len(plan)
                try:
                    item.obj(**arguments)
                except caught as exc:
                    error = error or keep(exc, start)
        verdict(error)

    return run_sync
