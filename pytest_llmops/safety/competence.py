"""Where each offline detector was validated, and whether a text falls inside it.

A detector trained and measured on English prompts has no measured quality
on a Portuguese question: on real chat the old models fired on ordinary
Portuguese, Spanish and Italian questions. So before judging, a detector asks
``outside(text, detector)``; a text outside its competence ends *unmeasured*
with a reason that names the language found and the alternative that can
judge it, never a confident false alarm or a silent pass.

Inside = English (``language.identify_language``), or Latin-script text too
short to identify (the detectors were trained on thousands of such English
chat messages: "ok", "ur gay"), or text with no letters at all. Standard
library only; language identification loads py3langid on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmops.safety.language import Language, identify_language


@dataclass(frozen=True)
class Competence:
    """The region a detector was validated on (see its model card) and what to use outside it."""

    detector: str
    languages: tuple[str, ...]
    kinds: str
    alternative: str

    def to_dict(self) -> dict[str, object]:
        return {"languages": list(self.languages), "kinds": self.kinds, "alternative": self.alternative}


COMPETENCE = {
    "injection": Competence(
        "injection",
        ("en",),
        "user prompts and chat messages; in document mode, sentences of English prose and e-mails",
        "plant a canary (make_canary()) in the instructions and check the answer with "
        "assert_injection_not_followed (offline, any language) or assert_injection_not_followed_judged with a judge",
    ),
    "toxicity": Competence(
        "toxicity",
        ("en",),
        "chat messages, tweets, user prompts and requests, and sentences of answers",
        "use assert_not_toxic_judged with a judge",
    ),
}


@dataclass(frozen=True)
class Outside:
    """Why a text is outside a detector's competence: the language found and the message to show."""

    language: Language
    reason: str


def outside(text: str, detector: str) -> Outside | None:
    """``None`` when ``detector`` (``"injection"``, ``"toxicity"``) is validated on ``text``, else why not."""
    competence = COMPETENCE[detector]
    language = identify_language(text)
    if language.code in competence.languages or language.method in ("too-short", "no-letters"):
        return None
    where = " and ".join(competence.languages)
    reason = (
        f"text is {language.describe()}; the offline {detector} detector is validated on "
        f"{'English' if where == 'en' else where} only: {competence.alternative}"
    )
    return Outside(language, reason)
