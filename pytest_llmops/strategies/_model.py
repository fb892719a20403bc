"""Variants only a model can write: paraphrases of a prompt, translations of an injected instruction.

Hypothesis draws synchronously, in a worker thread, and the model client
lives on the plugin's event loop; so a strategy does not call the model. It
draws a *pending* example (which paraphrase, which language) and the
``llm_robust`` runner resolves it on the loop, in the example's own task,
before the test body runs: the call goes through the run's client, cache,
limits and budgets, so a re-run replays it with no new call, and a failed or
invalid answer ends the example unmeasured (never a silent pass).

The runner knows a pending value by its ``llmops_resolve(client)``
coroutine method. The prompts ship as versioned templates
(``templates/paraphrase.toml``, ``templates/translate.toml``), recorded on the
case like any prompt. Importing this module does not import hypothesis.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmops.safety.language import LANGUAGE_NAMES, LATIN_LANGUAGES
from pytest_llmops.verdict import UnmeasuredError

TEMPLATES = Path(__file__).with_name("templates")
#: Paraphrases asked for per text, in one call; a draw picks one of them (shortest first).
PARAPHRASES = 5
#: Targets written in another script: the language identifier knows them by script, not by langid.
SCRIPT_LANGUAGES = {"ru": ("Russian", "Cyrillic"), "uk": ("Ukrainian", "Cyrillic"), "el": ("Greek", "Greek"),
                    "ar": ("Arabic", "Arabic"), "he": ("Hebrew", "Hebrew"), "hi": ("Hindi", "Devanagari"),
                    "zh": ("Chinese", "CJK"), "ja": ("Japanese", "CJK"), "ko": ("Korean", "Hangul")}
#: Target languages ``injections(languages=...)`` accepts: those the language identifier can check.
LANGUAGES = {**LANGUAGE_NAMES, **{code: name for code, (name, _) in SCRIPT_LANGUAGES.items()}}
DEFAULT_LANGUAGES = ("fr", "de", "es")

_NUMBERING = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*\u2022])\s*")
_NUMBERED = re.compile(r"^\s*\(?\d{1,2}[.):]\s")
_LABEL = re.compile(r"^(?:paraphrase|version|option|rewrite)\s*\d*\s*[:.-]\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"


@functools.cache
def template(name: str) -> Any:
    """The shipped prompt template ``name`` (``paraphrase`` or ``translate``)."""
    from pytest_llmops.prompts import load_template

    return load_template(TEMPLATES / f"{name}.toml")


def _same(a: str, b: str) -> bool:
    """Equal once case, punctuation and spacing are ignored (a "paraphrase" that changed only those is none)."""
    def fold(text: str) -> list[str]:
        return re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())

    return fold(a) == fold(b)


def _clean(line: str) -> str:
    return _NUMBERING.sub("", line).strip().strip(_QUOTES).strip()


def parse_paraphrases(answer: str, original: str) -> tuple[str, ...]:
    """The paraphrases in a numbered answer: no blank, repeated or unchanged one, shortest first.

    When some lines are numbered only those count; a "Paraphrase 2:" label is
    dropped, and so are lines about the task rather than paraphrases of the
    text ("Here are five paraphrases:"). Shortest first so that hypothesis,
    shrinking the drawn index toward 0, reports the shortest paraphrase that
    still breaks the model.
    """
    lines = [line for line in str(answer).splitlines() if line.strip()]
    numbered = [line for line in lines if _NUMBERED.match(line)]
    about_task = "paraphrase" not in original.casefold()
    found: dict[str, None] = {}
    for line in numbered or lines:
        text = _clean(_LABEL.sub("", _clean(line)))
        if not text or text.endswith(":") or (about_task and "paraphrase" in text.casefold()):
            continue
        if not _same(text, original) and not any(_same(text, seen) for seen in found):
            found[text] = None
    return tuple(sorted(found, key=lambda text: (len(text), text)))


def _model_of(client: Any) -> str:
    return str(getattr(client, "model", None) or "the paraphraser")


async def _ask(client: Any, what: str, prompt: Any) -> str:
    try:
        return str(await client.complete(prompt))
    except UnmeasuredError as exc:  # unconfigured, over budget, a provider error after retries: the reason says which
        raise UnmeasuredError(f"{what}: {exc}") from None


async def paraphrases_of(client: Any, text: str) -> tuple[str, ...]:
    """:data:`PARAPHRASES` paraphrases of ``text`` by ``client`` (one call, cached), shortest first."""
    answer = await _ask(client, "paraphrase", template("paraphrase").render(text=text, n=PARAPHRASES))
    found = parse_paraphrases(answer, text)
    if not found:
        raise UnmeasuredError(
            f"paraphrase: {_model_of(client)} gave no paraphrase that differs from the text {text[:80]!r} "
            f"(it answered {answer[:160]!r})"
        )
    return found


def check_language(text: str, language: str) -> str | None:
    """Why ``text`` is not in ``language``, or None when it is (or when the identifier cannot tell)."""
    from pytest_llmops.safety.language import identify_language, letter_scripts

    if language in SCRIPT_LANGUAGES:
        script = SCRIPT_LANGUAGES[language][1]
        scripts = letter_scripts(text)
        top = max(scripts, key=scripts.__getitem__) if scripts else None
        return None if top == script else f"its letters are mostly {top or 'absent'}, not {script} script"
    try:
        found = identify_language(text)
    except ImportError:  # py3langid is the [safety] extra: without it the language is not checked
        return None
    if found.code == language or found.method == "too-short":
        return None
    return f"it reads as {found.describe()}"


async def translation_of(client: Any, text: str, language: str, keep: str) -> str:
    """``text`` translated into ``language`` by ``client``; ``keep`` (the canary) must survive it."""
    name = LANGUAGES[language]
    what = f"translation into {name}"
    answer = _clean(await _ask(client, what, template("translate").render(text=text, language=name)))
    if not answer:
        raise UnmeasuredError(f"{what}: {_model_of(client)} answered nothing")
    if _same(answer, text):
        raise UnmeasuredError(f"{what}: {_model_of(client)} returned the text untranslated: {answer[:160]!r}")
    if keep not in answer:
        # The attack's success is read from the canary: without it the example cannot be judged.
        raise UnmeasuredError(f"{what}: the translation lost the canary {keep!r}: {answer[:160]!r}")
    wrong = check_language(answer.replace(keep, " "), language)
    if wrong is not None:
        raise UnmeasuredError(f"{what}: {_model_of(client)}'s answer is not {name}: {wrong}: {answer[:160]!r}")
    return answer


@dataclass(frozen=True)
class PendingParaphrase:
    """A perturbation that starts from the model's paraphrase number ``variant`` (1-based) of ``text``.

    ``plan`` holds the drawn local edits, applied to the paraphrase once it is
    known. The runner turns it into a :class:`~pytest_llmops.strategies.Perturbed`.
    """

    text: str
    variant: int
    plan: tuple[tuple[str, tuple[Any, ...]], ...]
    pool: tuple[str, ...]

    @property
    def strategy(self) -> str:
        kinds = ["paraphrase", *dict.fromkeys(kind for kind, _ in self.plan)]
        return "+".join(dict.fromkeys(kinds))

    async def llmops_resolve(self, client: Any) -> Any:
        from pytest_llmops.strategies import Perturbed, apply_plan
        from pytest_llmops.strategies._perturb import Edit

        found = await paraphrases_of(client, self.text)
        index = (self.variant - 1) % len(found)
        paraphrase = found[index]
        current, edits = apply_plan(paraphrase, self.plan, self.pool)
        first = Edit("paraphrase", f"#{index + 1} of {len(found)} (shortest first) by {_model_of(client)}")
        return Perturbed(current, self.text, [first, *edits])

    def __repr__(self) -> str:
        return f"PendingParaphrase(variant={self.variant}, edits={[kind for kind, _ in self.plan]})"


@dataclass(frozen=True)
class PendingTranslation:
    """An injection whose payload the model translates into ``language`` before it is sent."""

    task: str
    payload: str
    language: str
    position: str
    canary: str
    system: str | None

    @property
    def strategy(self) -> str:
        return f"translation-{self.language}@{self.position}"

    async def llmops_resolve(self, client: Any) -> Any:
        from pytest_llmops.strategies import Injection
        from pytest_llmops.strategies._encode import build_messages

        clear = self.payload.replace("{canary}", self.canary)
        translated = await translation_of(client, clear, self.language, self.canary)
        messages = build_messages(self.task, translated, self.position, self.system)
        return Injection(self.task, clear, "translation", self.position, translated, translated, self.canary,
                         tuple(messages), language=self.language)


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """``languages`` as a tuple of known codes; a ValueError lists the known ones."""
    chosen = (languages,) if isinstance(languages, str) else tuple(languages)
    unknown = [code for code in chosen if code not in LANGUAGES]
    if unknown or not chosen:
        raise ValueError(f"injections(languages=...): unknown or empty choice {unknown or list(chosen)}; use ISO 639 "
                         f"codes the language check knows: {', '.join(sorted(LANGUAGES))}")
    return chosen
