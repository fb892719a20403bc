"""Person names, offline: a gazetteer of first and last names with capitalisation and context rules.

A name is found where

- a title stands before a name: ``Mr. Grimes``, ``dr. gregory``, ``Prof Ada Okafor``;
- a known first name starts a run of capitalised words: ``Isabel Rolc``,
  ``Keith Bult Jr.``, ``Jeffrey Napolitano``; a first name that is also an
  ordinary word or a place ("Will", "Hope", "Georgia") counts only when another
  name follows (``Will Smith``) or a naming phrase comes before;
- a naming phrase comes before a capitalised word: ``my name is Iqra``,
  ``Dear Ms Vleugels``, ``she named him Timothy``;
- in a text written all in lower case, a known first name after a naming
  phrase or before a known last name: ``she named him joshua``, ``tammy smith``.

The gazetteer (``data/person_names.txt.gz``, 69 kB) holds the 1990 US Census
first names and its 20,000 most frequent last names, built by
``scripts/build_name_lists.py``; names from other countries are found only
through the title, naming-phrase and run rules. It misses many names (a
bare surname, a first name it does not know) and flags some places and
organisations named after people: see ``NAME_DETECTOR_CARD`` and
``names.md`` beside this module for the figures. Because it misses names, a
check that finds none cannot say a text names no one (``checks.pii_check``
reports that as unmeasured). Standard library only.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from pytest_llmops.safety.findings import Finding

PERSON = "PERSON"

#: Measured by ``benchmarks/pii.py`` on data the rules were not built on (see ``names.md``).
NAME_DETECTOR_CARD = (
    "the offline name detector misses about one name in five (on Presidio's synthetic sentences held out from "
    "its tuning it found a name in 81% of the texts naming someone, precision 0.97), and on real prompts about "
    "4 in 10 of its findings are places or words rather than people"
)

# Abbreviated titles take a dot ("Mr. Grimes"); word titles do not ("Sir Stuart", not "sir. Could").
_ABBREVIATED_TITLES = frozenset("mr mrs ms mx dr prof sr sra srta rev fr mme mlle".split())
_TITLES = _ABBREVIATED_TITLES | frozenset("miss professor sir dame madam madame mister herr frau".split())
_SUFFIXES = frozenset("jr sr ii iii iv phd md".split())
# Lower-case particles inside a name: "Donald van der Voet", "Maria da Silva".
_PARTICLES = frozenset("van von der den de da das dos du di del della la le bin ibn al ter ten".split())
# A "name" before these words, or right after a house number, is a street or a place:
# "John Street", "226 Thomas Avenue".
_PLACE_AFTER_RE = re.compile(
    r"^\s+(?:[A-Z][\w'.\-]*\s+)?(?:street|st|road|rd|avenue|ave|lane|ln|court|ct|drive|dr|way|boulevard|blvd|place|pl|"
    r"square|sq|terrace|highway|hwy|creek|heights|park|hills?|islands?|valley|bay|beach|city|county|river|lake|"
    r"mount|apt|suite|airport|station|university|college|school|hospital|church|bridge|center|centre)\b|^\s+\d",
    re.IGNORECASE,
)
_PLACE_BEFORE_RE = re.compile(
    r"(?:\d[\w-]*|\b(?:rue|via|avda|avenida|calle|rua|r|str|saint|st|san|santa|sankt|fort|port|lake|mount|mt|los|las|"
    r"new|south|north|east|west|upper|lower|greater))\.?\s+$",
    re.IGNORECASE,
)
# Words that name whoever comes next: "my name is", "named", "Dear". A first name that is also
# a word ("Hope") counts after any of them; a word the gazetteer does not know, only after the
# personal ones ("my name is Iqra", "I'm Zlata"), not after "called" or "named" (bands, places, pets).
_NAMING_BEFORE_RE = re.compile(
    r"(?:\bname\s+is|\bname's|\bnamed|\bcalled|\bi'm|\bi\s+am|\bthis\s+is|\bdear|\bhi|\bhello|\bhey|\bthanks|"
    r"\bregards|\bsincerely|\bsigned|\bsigned\s+by|\bask\s+for|\bspeak\s+(?:to|with))"
    r"[,:]?\s+(?:(?:him|her|me|them|it)\s+)?$",
    re.IGNORECASE,
)
_PERSONAL_NAMING_BEFORE_RE = re.compile(
    r"(?:\b(?:[Mm]y|[Hh]is|[Hh]er|[Yy]our|[Tt]heir) name is|\bname's|\bI'm|\bI am|\b[Cc]all me|\bDear"
    r"|\b[Ss]igned,?)\s+$"
)
# A word: letters, inner hyphens and apostrophes ("Jean-Luc", "O'Brien"), not a possessive "'s".
_WORD_RE = re.compile(r"[^\W\d_]+(?:[-'\u2019](?![sS]\b)[^\W\d_]+)*")


@dataclass(frozen=True)
class Gazetteer:
    """Lower-case first names, which of them are also ordinary words, and last names."""

    first: frozenset[str]
    ambiguous: frozenset[str]
    last: frozenset[str]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The shipped name lists, loaded once."""
    raw = resources.files("pytest_llmops.safety").joinpath("data/person_names.txt.gz").read_bytes()
    first: set[str] = set()
    ambiguous: set[str] = set()
    last: set[str] = set()
    section = first
    for line in gzip.decompress(raw).decode("ascii").splitlines():
        if line == "#first":
            section = first
        elif line == "#last":
            section = last
        elif line:
            name = line.rstrip("*")
            section.add(name)
            if line.endswith("*"):
                ambiguous.add(name)
    return Gazetteer(frozenset(first), frozenset(ambiguous), frozenset(last))


@dataclass(frozen=True)
class _Word:
    start: int
    end: int
    text: str

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def capitalised(self) -> bool:
        return self.text[0].isupper() and len(self.text) > 1 and not self.text.isupper()


def _words(text: str) -> list[_Word]:
    return [_Word(m.start(), m.end(), m.group()) for m in _WORD_RE.finditer(text)]


def _joined(text: str, left: _Word, right: _Word) -> bool:
    """``left`` and ``right`` are one space apart (an initial's dot allowed): parts of one name."""
    gap = text[left.end : right.start]
    return gap == " " or (gap == ". " and len(left.text) == 1)


def _initial(text: str, word: _Word) -> bool:
    """``word`` is a middle initial: "J." in "John J. Doe"."""
    return len(word.text) == 1 and word.text.isupper() and text[word.end : word.end + 1] == "."


def _extend(text: str, words: list[_Word], i: int, *, lower_case: bool) -> int:
    """The index of the last word of the name starting at ``words[i]``."""
    names = gazetteer()
    j = i
    while j + 1 < len(words) and j - i < 3 and _joined(text, words[j], words[j + 1]):
        nxt = words[j + 1]
        if nxt.lower in _SUFFIXES:
            break  # "Jr." is added by _name_end, with its dot
        if lower_case:
            if j > i or nxt.lower not in names.last:
                break  # "hannah rangel", not "hannah rangel fan"
        elif nxt.lower in _PARTICLES and j + 2 < len(words) and _joined(text, nxt, words[j + 2]):
            j += 1  # "van" in "Donald van der Voet": kept when a capitalised word follows
            continue
        elif not (nxt.capitalised or _initial(text, nxt)):
            break
        j += 1
    while j > i and words[j].lower in _PARTICLES:
        j -= 1  # particles at the end belong to what follows, not to the name
    return j


def _name_end(text: str, words: list[_Word], last: int) -> int:
    """The end offset of a name whose last word is ``words[last]``, taking a suffix such as "Jr."."""
    end = words[last].end
    suffix = words[last + 1] if last + 1 < len(words) else None
    if suffix is not None and suffix.lower in _SUFFIXES and text[end : suffix.start] in (" ", ", "):
        end = suffix.end
        if text[end : end + 1] == ".":
            end += 1
    return end


def find_names(text: str) -> Iterable[Finding]:
    """Every person name the gazetteer and rules find in ``text``, in text order."""
    words = _words(text)
    if not words:
        return
    names = gazetteer()
    lower_case = not any(c.isupper() for c in text)
    i = 0
    while i < len(words):
        word = words[i]
        found: tuple[int, str] | None = None
        named = _NAMING_BEFORE_RE.search(text, max(0, word.start - 40), word.start) is not None
        nxt = words[i + 1] if i + 1 < len(words) else None
        gap = text[word.end : nxt.start] if nxt is not None else ""
        is_title = word.lower in _TITLES and (lower_case or word.text[0].isupper())
        if nxt is not None and is_title and (gap == " " or (gap == ". " and word.lower in _ABBREVIATED_TITLES)):
            # "Mr. Grimes", "dr. gregory": the name after the title, without it.
            if nxt.capitalised or (lower_case and (nxt.lower in names.first or nxt.lower in names.last)):
                i += 1
                found = (_extend(text, words, i, lower_case=lower_case), "name:title")
        elif lower_case:
            if word.lower in names.first and word.lower not in names.ambiguous and len(word.text) > 2:
                found = (_extend(text, words, i, lower_case=True), "name:gazetteer")
        elif word.capitalised:
            # "Will Smith" is a name; "In Iran", "Long Breaks", "Carolina Panthers" are not.
            followed = nxt is not None and _joined(text, word, nxt) and nxt.capitalised and nxt.lower in names.last
            if word.lower in names.first and (word.lower not in names.ambiguous or followed or named):
                found = (_extend(text, words, i, lower_case=False), "name:gazetteer")
            elif (
                word.lower not in names.ambiguous
                and _PERSONAL_NAMING_BEFORE_RE.search(text, max(0, word.start - 20), word.start) is not None
            ):
                found = (_extend(text, words, i, lower_case=False), "name:context")
        if found is None:
            i += 1
            continue
        last, detector = found
        start, end = words[i].start, _name_end(text, words, last)
        if _PLACE_AFTER_RE.match(text, end) or _PLACE_BEFORE_RE.search(text, max(0, start - 12), start):
            i = last + 1
            continue
        yield Finding(PERSON, start, end, text[start:end], detector, 0.7)
        i = last + 1
