"""Text pieces the offline hallucination detector compares: sentences, tokens, numbers, names, quotes.

Everything here is about *surface* evidence: which words, numbers, dates,
names and quoted spans of an answer sentence also appear in the context.
Sentences are split with NLTK's Punkt model (the project's cached copy, see
``pytest_llmops.metrics._nltk_data``), after line breaks; words are compared
lower-cased and Porter-stemmed, so "launched" matches "launch".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# "1,000", "3.5", "1990", "84-year-old" (the 84), "$2.5bn" (the 2.5).
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_SCALE = re.compile(r"\s+(hundred|thousand|million|billion)\b", re.IGNORECASE)
_QUOTE = re.compile(r"[\"“”]([^\"“”]{3,200})[\"“”]")
_LINES = re.compile(r"\n\s*")

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "nor", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "s", "t", "don", "said", "says", "say", "one", "two", "also", "mr", "mrs", "ms", "dr", "new", "year", "years", "time", "like", "get", "got", "us", "may", "might", "must", "shall", "per", "via", "yes"]
)
NEGATIONS = frozenset(["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without", "n't", "nt"])

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12,
}
# In an answer, "one" is more often a pronoun ("one of the...") than a count.
_ANSWER_NUMBER_WORDS = {w: v for w, v in _NUMBER_WORDS.items() if w not in ("one", "hundred", "thousand")}
MONTHS = frozenset(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
)


@functools.cache
def _stemmer():
    from pytest_llmops.metrics._deps import require

    require("nltk", "nltk", purpose="the offline hallucination detector (stemming, sentence splitting)")
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Lower-cased Porter stem of ``word`` ("Launched" -> "launch")."""
    word = word.lower().replace("’", "'")
    word = word.removesuffix("'s")
    return _stemmer().stem(word)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: lines first, then Punkt sentence boundaries. Empty pieces are dropped."""
    from pytest_llmops.metrics._nltk_data import sentence_splitter

    splitter = sentence_splitter()
    out: list[str] = []
    for line in _LINES.split(text):
        line = line.strip()
        if not line:
            continue
        out.extend(s.strip() for s in splitter.tokenize(line) if any(c.isalnum() for c in s))
    return out


def words(text: str) -> list[str]:
    """The words of ``text`` as written (letters and digits; "don't" stays one word)."""
    return _WORD.findall(text)


def is_content(word: str) -> bool:
    """Whether ``word`` carries content: not a stop word, nor a negation (``negation_mismatch`` weighs those)."""
    lowered = word.lower()
    return lowered not in STOPWORDS and lowered not in NEGATIONS


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry content, in order."""
    return [stem(w) for w in words(text) if is_content(w)]


def all_stems(text: str) -> list[str]:
    """Stems of every word, in order."""
    return [stem(w) for w in words(text)]


def has_negation(text: str) -> bool:
    lowered = text.lower().replace("’", "'")
    return "n't" in lowered or any(w in NEGATIONS for w in _WORD.findall(lowered))


def _norm_number(raw: str) -> str:
    value = raw.replace(",", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value.lstrip("0") or "0"


def numbers(text: str, *, answer: bool = False) -> list[tuple[str, str]]:
    """``(as written, normalised)`` for each number or month in ``text``: "1,000" and "1000" both give "1000".

    Number words count too ("five" -> "5"); in an answer (``answer=True``)
    "one", "hundred" and "thousand" do not, being too often no count at all.
    """
    found = []
    scaled: set[int] = set()  # word positions of "million" in "12 million", already counted
    for m in _NUMBER.finditer(text):
        raw, value = m.group(0), _norm_number(m.group(0))
        after = _SCALE.match(text, m.end())
        if after:
            raw = text[m.start() : after.end()]
            value = _norm_number(repr(float(value) * _NUMBER_WORDS[after.group(1).lower()]))
            scaled.add(after.start(1))
        found.append((raw, value))
    table = _ANSWER_NUMBER_WORDS if answer else _NUMBER_WORDS
    for match in _WORD.finditer(text):
        word, lowered = match.group(0), match.group(0).lower()
        if match.start() in scaled:
            continue
        if lowered in table:
            found.append((word, str(table[lowered])))
        elif lowered in MONTHS and (lowered != "may" or word[0].isupper()):
            found.append((word, lowered))
    return found


def number_set(text: str) -> set[str]:
    """Normalised numbers and months of a context, with multiples spelt out: "2 million" adds "2000000"."""
    found = {norm for _, norm in numbers(text)}
    # The bare figures too: "12 million" in the context supports an answer's "12".
    found.update(_norm_number(m.group(0)) for m in _NUMBER.finditer(text))
    return found


@dataclass(frozen=True)
class Name:
    """A run of capitalised words ("Richard Nixon") and its lower-cased stems."""

    text: str
    stems: tuple[str, ...]


def names(sentence: str) -> list[Name]:
    """Runs of capitalised words in ``sentence``: likely names of people, places, works, organisations.

    The sentence's first word counts only when it is not a stop word ("The",
    "He"). Text written all in lower or upper case has no usable capitals and
    gives no names.
    """
    letters = [c for c in sentence if c.isalpha()]
    if not letters or all(c.islower() for c in letters) or all(c.isupper() for c in letters):
        return []
    runs: list[Name] = []
    current: list[str] = []
    for index, match in enumerate(_WORD.finditer(sentence)):
        word = match.group(0)
        capital = word[0].isupper() and not word.isdigit()
        if capital and index == 0 and word.lower() in STOPWORDS:
            capital = False
        if capital and word.lower() in STOPWORDS and not current:
            capital = False  # "In", "A" inside a sentence after a colon, etc.
        if capital:
            current.append(word)
        elif current:
            runs.append(Name(" ".join(current), tuple(stem(w) for w in current)))
            current = []
    if current:
        runs.append(Name(" ".join(current), tuple(stem(w) for w in current)))
    # A lone month is a date: ``numbers`` counts it, so it is not counted twice.
    return [run for run in runs if not (len(run.stems) == 1 and run.text.lower() in MONTHS)]


def quotes(text: str) -> list[str]:
    """Spans between double quotes ("...", “...”) of at least three characters."""
    return [m.group(1).strip() for m in _QUOTE.finditer(text) if len(words(m.group(1))) >= 2]


def squash(text: str) -> str:
    """Lower-case words joined by single spaces, for substring tests of quotes."""
    return " ".join(w.lower() for w in words(text))
