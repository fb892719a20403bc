"""What to score in each log record: a check name, the record field it reads, and its options."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as _field  # "field" is also the name of a Check attribute
from pathlib import Path
from typing import Any

from pytest_llmops.verdict import Score


class ChecksError(ValueError):
    """A checks file or a check that cannot be used; the message names the file and the check."""


def _pii(text: str, record: Mapping[str, Any], check: Check) -> Score:
    from pytest_llmops.safety.checks import pii_check

    return pii_check(text, **check.options)


def _toxicity(text: str, record: Mapping[str, Any], check: Check) -> Score:
    from pytest_llmops.safety.checks import toxicity_check

    return toxicity_check(text, **check.options)


def _injection(text: str, record: Mapping[str, Any], check: Check) -> Score:
    from pytest_llmops.safety.checks import injection_check

    return injection_check(text, **check.options)


def _grounded(text: str, record: Mapping[str, Any], check: Check) -> Score:
    from pytest_llmops.assertions.grounded import grounded_score

    context = record.get(check.context_field or "")
    if not isinstance(context, (str, list)) or not context:
        return Score.unmeasured("grounded", f"the record has no context in field {check.context_field!r}")
    return grounded_score(text, context, **check.options)


def _leak(text: str, record: Mapping[str, Any], check: Check) -> Score:
    from pytest_llmops.safety.checks import leak_check

    options = dict(check.options)
    secrets = options.pop("secrets", None)
    if not secrets:
        return Score.unmeasured("leak", "the leak check needs secrets = [...] in its options")
    return leak_check(text, secrets, **options)


#: Checks that ask a judge model (``judged.py``): name -> options they accept besides the judge's.
JUDGE_CHECKS: dict[str, frozenset[str]] = {
    "rubric": frozenset({"criteria", "score_range", "threshold", "steps"}),
    "faithfulness": frozenset({"threshold"}),
}

#: Check name -> (function, needs a context field, options it accepts).
CHECKS: dict[str, tuple[Callable[[str, Mapping[str, Any], Check], Score], bool, frozenset[str]]] = {
    "pii": (_pii, False, frozenset({"allow", "types"})),
    "toxicity": (_toxicity, False, frozenset({"max_score", "embeddings"})),
    "injection": (_injection, False, frozenset({"source", "max_score", "embeddings"})),
    "grounded": (_grounded, True, frozenset({"max_score", "embeddings", "competence"})),
    "leak": (_leak, False, frozenset({"secrets", "max_coverage", "min_run_words"})),
}


@dataclass(frozen=True)
class Check:
    """One check: ``name`` (see ``CHECKS``), the record ``field`` holding the text, options passed through."""

    name: str
    field: str = "output"
    context_field: str | None = None
    options: dict[str, Any] = _field(default_factory=dict)
    #: How results name it; defaults to ``name`` (two checks of one kind need two labels).
    label: str = ""
    #: Judge checks: the judge model (any litellm name, or openai/... with ``judge_api_base``).
    judge: str | None = None
    judge_api_base: str | None = None
    #: The record field with the question the answer replies to (judge checks show it to the judge).
    input_field: str | None = None

    @property
    def judged(self) -> bool:
        return self.name in JUDGE_CHECKS

    def __post_init__(self) -> None:
        if self.name in JUDGE_CHECKS:
            if not self.judge:
                raise ChecksError(f"check {self.name!r} asks a judge: give judge = \"provider/model\"")
            unknown = sorted(set(self.options) - JUDGE_CHECKS[self.name])
            if unknown:
                raise ChecksError(f"check {self.name!r}: unknown option(s) {unknown}; it takes "
                                  f"{', '.join(sorted(JUDGE_CHECKS[self.name]))}")
            if self.name == "rubric" and not self.options.get("criteria"):
                raise ChecksError("check 'rubric' needs criteria = \"what a good answer does\"")
            if self.name == "faithfulness" and not self.context_field:
                raise ChecksError("check 'faithfulness' needs context_field = \"...\" (the record field with the context)")
            if not self.label:
                object.__setattr__(self, "label", self.name)
            return
        if self.name not in CHECKS:
            raise ChecksError(f"unknown check {self.name!r}; use one of {', '.join(sorted([*CHECKS, *JUDGE_CHECKS]))}")
        _, needs_context, accepted = CHECKS[self.name]
        unknown = sorted(set(self.options) - accepted)
        if unknown:
            raise ChecksError(
                f"check {self.name!r}: unknown option(s) {unknown}; it takes {', '.join(sorted(accepted)) or 'none'}"
            )
        if needs_context and not self.context_field:
            raise ChecksError(f"check {self.name!r} needs context_field = \"...\" (the record field with the context)")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def run(self, record: Mapping[str, Any]) -> Score:
        """The offline check's score of ``record`` (judge checks run in ``judged.judge_scores``)."""
        text = record.get(self.field)
        if not isinstance(text, str) or not text.strip():
            return Score.unmeasured(self.label, f"the record has no text in field {self.field!r}")
        return CHECKS[self.name][0](text, record, self)


def load_checks(path: Path) -> list[Check]:
    """Read ``[[check]]`` tables from a TOML file::

        [[check]]
        name = "grounded"
        field = "output"
        context_field = "context"
        max_score = 0.6          # any other key is an option of the check
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChecksError(f"{path}: cannot read the checks file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChecksError(f"{path}: not valid TOML: {exc}") from None
    tables = data.get("check")
    if not isinstance(tables, list) or not tables:
        raise ChecksError(f"{path}: no [[check]] table; e.g.\n[[check]]\nname = \"pii\"\nfield = \"output\"")
    checks, labels = [], set()
    for number, table in enumerate(tables, start=1):
        fixed = ("name", "field", "context_field", "label", "judge", "judge_api_base", "input_field")
        options = {k: v for k, v in table.items() if k not in fixed}
        try:
            check = Check(
                name=str(table.get("name", "")), field=str(table.get("field", "output")),
                context_field=table.get("context_field"), options=options, label=str(table.get("label", "")),
                judge=table.get("judge"), judge_api_base=table.get("judge_api_base"),
                input_field=table.get("input_field"),
            )
        except ChecksError as exc:
            raise ChecksError(f"{path}: [[check]] number {number}: {exc}") from None
        if check.label in labels:
            raise ChecksError(f"{path}: [[check]] number {number}: a second {check.label!r}; give it label = \"...\"")
        labels.add(check.label)
        checks.append(check)
    return checks


def load_gates(path: Path) -> list[str]:
    """The checks file's top-level ``gates = ["pii.pass_rate.lower>=0.99", ...]`` (none: ``[]``)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []  # load_checks, called first, has already said what is wrong with the file
    gates = data.get("gates", [])
    if not isinstance(gates, list) or not all(isinstance(gate, str) for gate in gates):
        raise ChecksError(f"{path}: gates must be a list of gate expressions, "
                          "e.g. gates = [\"pii.pass_rate.lower>=0.99\"]")
    return gates
