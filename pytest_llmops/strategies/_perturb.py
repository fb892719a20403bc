"""Meaning-preserving edits of a prompt, as pure functions (no hypothesis here).

Each edit takes the text and small integer choices (positions, variants) and
returns the edited text, or ``None`` when it cannot apply there (no letter to
mistype, one sentence only). Small integers pick the simplest edit, so when
hypothesis shrinks the choices toward 0 the edit it reports is the plainest
one that still breaks the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

#: Invisible characters a tokenizer still sees: zero-width space, non-joiner, joiner, BOM.
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")
#: Latin letters and look-alikes from Cyrillic and Greek (first entry is the one shrinking reaches).
HOMOGLYPHS: dict[str, tuple[str, ...]] = {
    "a": ("\u0430", "\u03b1"), "c": ("\u0441", "\u03f2"), "e": ("\u0435", "\u03b5"), "i": ("\u0456", "\u03b9"),
    "o": ("\u043e", "\u03bf"), "p": ("\u0440", "\u03c1"), "s": ("\u0455",), "x": ("\u0445", "\u03c7"),
    "y": ("\u0443", "\u03b3"), "A": ("\u0410", "\u0391"), "B": ("\u0412", "\u0392"), "C": ("\u0421",),
    "E": ("\u0415", "\u0395"), "H": ("\u041d", "\u0397"), "K": ("\u041a", "\u039a"), "M": ("\u041c", "\u039c"),
    "O": ("\u041e", "\u039f"), "P": ("\u0420", "\u03a1"), "T": ("\u0422", "\u03a4"), "X": ("\u0425", "\u03a7"),
}
#: The reverse map, to check that a homoglyph edit changed only look-alikes.
FROM_HOMOGLYPH = {glyph: latin for latin, glyphs in HOMOGLYPHS.items() for glyph in glyphs}
#: Neighbours on a QWERTY keyboard, for substitution typos.
KEY_NEIGHBOURS = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo", "j": "hk",
    "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "wa", "r": "et", "s": "ad", "t": "ry",
    "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "xa",
}
#: Sentences that add nothing to a question: a robust model answers as before.
DISTRACTORS = (
    "By the way, the weather is nice today.",
    "I had coffee with a friend this morning.",
    "This question is part of a routine check.",
    "My cat is asleep on the keyboard.",
    "Please keep the answer short.",
)
WHITESPACE = ("  ", "\t", "\n", " \u00a0")

_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Edit:
    """One applied edit: its kind and a short human description (shown in failure messages)."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def typo(text: str, word: int, variant: int, at: int) -> tuple[str, Edit] | None:
    """Mistype one word of 2+ letters: swap two letters, drop, double or hit a neighbouring key."""
    candidates = [m for m in words(text) if len(m.group()) >= 2]
    if not candidates:
        return None
    match = candidates[word % len(candidates)]
    token = match.group()
    i = at % (len(token) - 1)
    kind = ("swap", "drop", "double", "neighbour")[variant % 4]
    if kind == "swap":
        if token[i] == token[i + 1]:
            return None
        new = token[:i] + token[i + 1] + token[i] + token[i + 2:]
    elif kind == "drop":
        new = token[:i] + token[i + 1:]
    elif kind == "double":
        new = token[:i + 1] + token[i] + token[i + 1:]
    else:
        keys = KEY_NEIGHBOURS.get(token[i].lower(), "")
        if not keys:
            return None
        key = keys[0] if token[i].islower() else keys[0].upper()
        new = token[:i] + key + token[i + 1:]
    return text[:match.start()] + new + text[match.end():], Edit("typo", f"{kind} {token!r} -> {new!r}")


def casing(text: str, variant: int, word: int) -> tuple[str, Edit] | None:
    """Change letter case: all lower, all upper, or one word upper-cased."""
    kind = ("lower", "upper", "word upper")[variant % 3]
    if kind == "lower":
        new = text.lower()
    elif kind == "upper":
        new = text.upper()
    else:
        found = words(text)
        if not found:
            return None
        match = found[word % len(found)]
        new = text[:match.start()] + match.group().upper() + text[match.end():]
    return (new, Edit("casing", kind)) if new != text else None


def whitespace(text: str, variant: int, at: int) -> tuple[str, Edit] | None:
    """Widen one space into extra whitespace (two spaces, a tab, a newline, a no-break space)."""
    spaces = [i for i, char in enumerate(text) if char == " "]
    if not spaces:
        return None
    i = spaces[at % len(spaces)]
    extra = WHITESPACE[variant % len(WHITESPACE)]
    return text[:i] + extra + text[i + 1:], Edit("whitespace", f"{extra!r} at {i}")


def zero_width(text: str, variant: int, at: int) -> tuple[str, Edit] | None:
    """Insert an invisible zero-width character inside the text."""
    if not text:
        return None
    i = 1 + at % max(1, len(text) - 1)
    char = ZERO_WIDTH[variant % len(ZERO_WIDTH)]
    return text[:i] + char + text[i:], Edit("zero_width", f"U+{ord(char):04X} at {i}")


def homoglyph(text: str, variant: int, at: int) -> tuple[str, Edit] | None:
    """Replace one Latin letter with a Cyrillic or Greek look-alike."""
    spots = [i for i, char in enumerate(text) if char in HOMOGLYPHS]
    if not spots:
        return None
    i = spots[at % len(spots)]
    glyphs = HOMOGLYPHS[text[i]]
    glyph = glyphs[variant % len(glyphs)]
    return text[:i] + glyph + text[i + 1:], Edit("homoglyph", f"{text[i]!r} -> U+{ord(glyph):04X} at {i}")


@cache
def synonyms_of(word: str) -> tuple[str, ...]:
    """Single-word WordNet 3.0 synonyms of ``word`` (lower case) in its most common sense.

    Only the first synset: later senses swap meaning ("word" -> "Bible").
    """
    from pytest_llmops.metrics._nltk_data import wordnet

    found: list[str] = []
    for synset in wordnet().synsets(word.lower())[:1]:
        for lemma in synset.lemma_names():
            name = lemma.lower()
            if "_" not in name and "-" not in name and name != word.lower() and name.isalpha() and name not in found:
                found.append(name)
    return tuple(found)


#: Words whose WordNet "synonyms" change the question's structure rather than its wording.
_FUNCTION_WORDS = frozenset(
    "a an the is are was were be been am do does did of in on at to for by with and or but not what which who whom "
    "whose when where why how i you he she it we they me him her us them my your his its our their this that these "
    "those there here have has had can could will would shall should may might must one two three four five six seven "
    "eight nine ten first last".split()
)


def synonym(text: str, word: int, variant: int) -> tuple[str, Edit] | None:
    """Swap one content word for a WordNet synonym (keeping an initial capital)."""
    candidates = [(m, syns) for m in words(text) if m.group().lower() not in _FUNCTION_WORDS
                  and (syns := synonyms_of(m.group()))]
    if not candidates:
        return None
    match, syns = candidates[word % len(candidates)]
    new = syns[variant % len(syns)]
    if match.group()[0].isupper():
        new = new[0].upper() + new[1:]
    return text[:match.start()] + new + text[match.end():], Edit("synonym", f"{match.group()!r} -> {new!r}")


def sentence_order(text: str, order: Sequence[int]) -> tuple[str, Edit] | None:
    """Reorder the sentences of a text with two or more of them."""
    parts = sentences(text)
    if len(parts) < 2:
        return None
    permutation = [i for i in order if i < len(parts)]
    if sorted(permutation) != list(range(len(parts))) or permutation == list(range(len(parts))):
        return None
    return " ".join(parts[i] for i in permutation), Edit("sentence_order", f"order {permutation}")


def distractor(text: str, variant: int, at: int, pool: Sequence[str] = DISTRACTORS) -> tuple[str, Edit] | None:
    """Insert an irrelevant sentence before, between or after the sentences."""
    parts = sentences(text)
    sentence = pool[variant % len(pool)]
    i = at % (len(parts) + 1)
    return " ".join([*parts[:i], sentence, *parts[i:]]), Edit("distractor", f"{sentence!r} at sentence {i}")
