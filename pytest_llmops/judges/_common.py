"""What every judge metric shares: its signature, details, the guard's flags and the final Score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pytest_llmops.judges.engine import ShapeCheck, ask, judge_name
from pytest_llmops.judges.guard import scan_for_judge_address
from pytest_llmops.judges.templates import JudgeTemplate
from pytest_llmops.case import current_case
from pytest_llmops.review import overrides
from pytest_llmops.review.items import JUDGED_KEY, item_sha256, plain_texts
from pytest_llmops.review.select import PLAN_KEY
from pytest_llmops.verdict import Score

GuardMode = Literal["flag", "unmeasured", "off"]
GUARD_MODES = ("flag", "unmeasured", "off")

#: Providers that return token log-probabilities on request.
LOGPROB_PREFIXES = ("openai/", "gpt-", "azure/", "hosted_vllm/", "local/")


def check_fraction(value: float | None, what: str) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be between 0 and 1, got {value}")
    return value


def quote(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items, quoted, and how many more there are."""
    shown = "; ".join(repr(item) for item in items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def supports_logprobs(judge: Any) -> bool:
    model = getattr(judge, "model", None)
    return hasattr(judge, "config") and isinstance(model, str) and model.startswith(LOGPROB_PREFIXES)


class MetricRun:
    """One judge metric being computed: builds its signature, details and Score.

    ``guarded`` maps field names to the texts under evaluation; each is
    scanned for attempts to address the judge. With ``guard="flag"`` a hit
    is reported in the score's reason and details; with ``"unmeasured"`` the
    score is not trusted at all; ``"off"`` skips the scan.
    """

    def __init__(
        self,
        name: str,
        judge: Any,
        templates: Sequence[JudgeTemplate],
        *,
        guard: GuardMode = "flag",
        guarded: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        response_format: str = "auto",
        params: Mapping[str, Any] | None = None,
        judged: Mapping[str, Any] | None = None,
    ) -> None:
        if guard not in GUARD_MODES:
            raise ValueError(f"guard must be one of {GUARD_MODES}, got {guard!r}")
        self.name = name
        self.judge = judge
        self.templates = list(templates)
        self.guard = guard
        self.options = dict(options or {})
        self.flags: list[dict[str, Any]] = []
        if guard != "off":
            for field, text in (guarded or {}).items():
                self.flags.extend({"field": field, **hit.to_dict()} for hit in scan_for_judge_address(text))
        self.judge_calls = 0
        self.cache_hits = 0
        self.attempts: list[int] = []
        self.json_request = ""
        self.response_format = response_format
        self.params = params
        #: The texts judged (input, output, context...): kept in the details when the case is up for
        #: human review, and what a human label is matched on (``pytest_llmops.review``).
        self.judged = plain_texts(judged)

    async def ask(
        self, template: JudgeTemplate, variables: Mapping[str, Any], *, check: ShapeCheck | None = None,
        logprobs: int = 0,
    ) -> Any:
        """Ask the judge one judgement with this run's request options, and note the reply."""
        return self.saw(
            await ask(self.judge, template, variables, check=check, logprobs=logprobs,
                      response_format=self.response_format, params=self.params)
        )

    def share(self, total: int, misses: Sequence[str], *, counted: str, missing: str, threshold: float | None,
              **details: Any) -> Score:
        """The score "the share of ``total`` items that are not ``misses``", naming the misses in the reason."""
        kept = total - len(misses)
        reason = f"{kept} of {total} {counted}"
        if misses:
            reason += f"; {missing}: {quote(misses)}"
        return self.measured(kept / total, threshold=threshold, reason=reason, **details)

    def saw(self, reply: Any) -> Any:
        """Note a judge reply's attempts and cache hits; returns the reply."""
        self.attempts.append(reply.attempts)
        self.cache_hits += reply.cache_hits
        self.json_request = reply.structured
        return reply

    @property
    def signature(self) -> str:
        parts = [self.name, f"judge:{judge_name(self.judge)}"]
        parts += [f"template:{t.ref}" for t in self.templates]
        parts += [f"{key}:{value}" for key, value in self.options.items()]
        return "|".join(parts)

    def details(self, **more: Any) -> dict[str, Any]:
        details: dict[str, Any] = {
            "judge_model": judge_name(self.judge),
            "templates": [t.describe() for t in self.templates],
            **self.options,
        }
        if self.attempts:
            details["judge_attempts"] = list(self.attempts)
            details["judge_cache_hits"] = self.cache_hits
            details["json_requested_by"] = self.json_request
        if self.flags:
            details["judge_addressed"] = list(self.flags)
        if self.judged and _review_on():
            details[JUDGED_KEY] = dict(self.judged)
        details.update(more)
        return details

    def _warning(self) -> str:
        hits = "; ".join(f"{f['field']}: {f['source']} {f['evidence']!r}" for f in self.flags[:3])
        return f"the evaluated text tries to address the judge ({hits})"

    def unmeasured(self, reason: str, **details: Any) -> Score:
        if self.flags and "address the judge" not in reason:
            reason = f"{reason}. Note: {self._warning()}"
        return Score.unmeasured(self.name, reason, signature=self.signature, details=self.details(**details))

    def measured(
        self,
        value: float,
        *,
        threshold: float | None,
        reason: str,
        higher_is_better: bool = True,
        **details: Any,
    ) -> Score:
        if self.flags:
            if self.guard == "unmeasured":
                return self.unmeasured(
                    f"{self._warning()}; the judge's verdict is not trusted (guard='unmeasured')",
                    would_be=value,
                    **details,
                )
            reason = f"WARNING: {self._warning()}. {reason}"
        score = Score.measured(
            self.name,
            value,
            threshold=threshold,
            higher_is_better=higher_is_better,
            reason=reason,
            signature=self.signature,
            details=self.details(**details),
        )
        case = current_case()
        if self.judged and case is not None and overrides.active():
            score = overrides.override(score, case.nodeid, item_sha256(self.judged))
        return score


def _review_on() -> bool:
    """Whether the running case is up for human review (its plan is set at setup)."""
    case = current_case()
    return case is not None and PLAN_KEY in case.metadata
