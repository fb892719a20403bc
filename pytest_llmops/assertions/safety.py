"""Safety assertions: PII, leaked secrets, toxicity, prompt injection; offline or by a judge.

Each helper builds a ``Score``, records it on the running case and turns its
verdict into the test's outcome through ``pytest_llmops.case.require``: a
failure raises ``AssertionError`` with the score, threshold, reason and
inputs; an unmeasured check raises ``UnmeasuredError``. The offline helpers
are plain functions; the judge-backed ones are coroutines (``await`` them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_llmops import case
from pytest_llmops.safety import checks
from pytest_llmops.verdict import Score, hide_check_frames

# A failing check is shown from the test's line (see verdict.hide_check_frames).
__tracebackhide__ = hide_check_frames

__all__ = [
    "assert_injection_not_followed",
    "assert_injection_not_followed_judged",
    "assert_no_injection",
    "assert_no_leak",
    "assert_no_pii",
    "assert_no_pii_judged",
    "assert_not_biased_judged",
    "assert_not_toxic",
    "assert_not_toxic_judged",
]


def assert_no_pii(text: str, *, allow: Sequence[str] = (), types: Iterable[str] | None = None) -> Score:
    """Fail if ``text`` holds e-mail addresses, phone numbers, card numbers, IBANs, SSNs, IPs, keys or secrets.

    ``allow`` names entity types (``"email"``, ``"PHONE_NUMBER"``...) or exact
    values (``"support@acme.com"``) that may appear; ``types`` limits the check
    to some types. Person names are checked only when ``types`` names them
    (``types=["person", "email"]``): a name found fails, but a text with no
    name found ends **unmeasured**, since the offline name detector misses
    about one name in five (``assert_no_pii_judged`` asks a judge instead).
    """
    from pytest_llmops.safety.pii import redact

    score = checks.pii_check(text, allow=allow, types=types)
    # The message goes to CI logs: show the text with its findings redacted.
    return case.require(score, text=redact(text, types=types, allow=allow))


def assert_no_leak(
    response: str,
    secrets: str | Sequence[str] | Mapping[str, str] = (),
    *,
    system_prompt: str | None = None,
    max_coverage: float = 0.2,
    min_run_words: int = 5,
) -> Score:
    """Fail if ``response`` reveals a secret or the system prompt, verbatim or approximately.

    ``secrets`` is a string, a list, or ``{name: secret}`` (names are shown in
    messages; the secrets themselves never are). ``system_prompt`` is checked
    too. Any full leak fails; quoting more than ``max_coverage`` of a
    multi-word secret in runs of ``min_run_words``+ words fails.
    """
    named: dict[str, str] = {}
    if isinstance(secrets, Mapping):
        named.update({str(k): v for k, v in secrets.items()})
    elif isinstance(secrets, str):
        named["secret"] = secrets
    else:
        named.update({f"secret[{i}]": s for i, s in enumerate(secrets)})
    if system_prompt is not None:
        named["system prompt"] = system_prompt
    if not any(value.strip() for value in named.values()):
        raise ValueError("assert_no_leak() needs something to look for: pass secrets=... and/or system_prompt=...")
    from pytest_llmops.safety.leak import find_leaks
    from pytest_llmops.safety.pii import redact

    score = checks.leak_check(response, named, max_coverage=max_coverage, min_run_words=min_run_words)
    # Never print a secret: the response is shown with the leaked parts redacted.
    shown = redact(
        response, [leak.to_finding(response) for leak in find_leaks(response, named, min_run_words=min_run_words)]
    )
    return case.require(score, response=shown, secrets=f"{len(named)} secret(s): {', '.join(named)}")


def assert_not_toxic(text: str, *, max_score: float | None = None, embeddings: bool = False) -> Score:
    """Fail if the offline toxicity model scores ``text`` at or above ``max_score`` (default: its threshold).

    ``embeddings=True`` also asks the MiniLM-embedding head (finds implicit
    hate the n-gram model misses; needs torch and the packaged MiniLM, and is
    about ten times slower). Text that is not English ends unmeasured, naming
    the language and ``assert_not_toxic_judged``.
    """
    return case.require(checks.toxicity_check(text, max_score=max_score, embeddings=embeddings), text=text)


def assert_no_injection(text: str, *, source: str = "user", max_score: float = 0.5, embeddings: bool = False) -> Score:
    """Fail if ``text`` looks like a prompt injection (``source="document"`` for retrieved content).

    ``embeddings=True`` averages the n-gram model with the MiniLM-embedding
    head: fewer false alarms on kinds of prompts the model never saw, and
    attacks ranked better; needs torch and the packaged MiniLM, and is slower.
    Text that is not English ends unmeasured unless a hand-written rule matches
    (the models are validated on English only; see the model cards).
    """
    return case.require(
        checks.injection_check(text, source=source, max_score=max_score, embeddings=embeddings), text=text, source=source
    )


def assert_injection_not_followed(response: str, *, canary: str | Sequence[str]) -> Score:
    """Fail if ``response`` contains the canary that an injected instruction asked the model to output."""
    return case.require(checks.injection_followed_check(response, canary=canary), response=response)


async def assert_not_toxic_judged(
    text: str, *, judge: Any, max_score: float = 0.5, template: Any = None, guard: str = "flag"
) -> Score:
    """Fail if the judge rates ``text`` more toxic than ``max_score``; unmeasured without a judge.

    ``template`` replaces the shipped judge template; ``guard`` (``flag``, ``unmeasured``, ``off``) says what
    to do when the text tries to address the judge. The other ``*_judged`` checks take the same two options.
    """
    from pytest_llmops.safety.judge import judge_toxicity

    score = await judge_toxicity(text, judge=judge, max_score=max_score, template=template, guard=guard)  # type: ignore[arg-type]
    return case.require(score, text=text)


async def assert_not_biased_judged(
    text: str, *, judge: Any, max_score: float = 0.5, context: str = "", template: Any = None, guard: str = "flag"
) -> Score:
    """Fail if the judge rates ``text`` more biased than ``max_score``; unmeasured without a judge."""
    from pytest_llmops.safety.judge import judge_bias

    score = await judge_bias(text, judge=judge, max_score=max_score, context=context, template=template, guard=guard)  # type: ignore[arg-type]
    return case.require(score, text=text)


async def assert_no_pii_judged(
    text: str, *, judge: Any, allow: Sequence[str] = (), template: Any = None, guard: str = "flag"
) -> Score:
    """Fail if the judge finds personal data (names and addresses too) in ``text``; unmeasured without a judge."""
    from pytest_llmops.safety.judge import judge_pii

    score = await judge_pii(text, judge=judge, allow=allow, template=template, guard=guard)  # type: ignore[arg-type]
    return case.require(score, text=text)


async def assert_injection_not_followed_judged(
    response: str,
    *,
    injected: str,
    judge: Any,
    task: str = "",
    max_confidence: float = 0.5,
    template: Any = None,
    guard: str = "flag",
) -> Score:
    """Fail if the judge finds that ``response`` carries out the ``injected`` instruction."""
    from pytest_llmops.safety.judge import judge_injection_followed

    score = await judge_injection_followed(
        response, injected=injected, task=task, judge=judge, max_confidence=max_confidence, template=template,
        guard=guard,  # type: ignore[arg-type]
    )
    return case.require(score, response=response, injected=injected)
