"""Phone numbers: candidates by shape, scored by their format, libphonenumber and the words around them.

Phone numbers have no checksum, so a candidate (groups of digits joined by
spaces, dots, dashes or slashes, an optional ``+CC``/``00CC``/``(+CC)``
prefix, area code in brackets, extension) earns a score:

- an international number (``+44 20 7946 0958``, ``0049 30 1234567``,
  ``(+30) 2439 150008``) is parsed by ``phonenumbers`` (Google's
  libphonenumber metadata: country codes, number lengths and plans); a valid
  or possible number is flagged with no other clue;
- a North American number (``(415) 555-0100``, ``415.555.0100``) or one with
  an extension is flagged;
- a national number written with separators the way phone numbers are
  written (a trunk ``0`` or an area code in brackets, or three or more
  even groups: ``04 15 39 15 00``, ``080-9141-7776``, ``(0161) 496 0066``,
  ``91 41 77 76``) is flagged;
- anything else (``425700624``, ``33 93 31``, ``609 141 777``, which reads
  as a number with thousands separators too) needs a phone word around it
  ("call", "phone", "fax" before; "office", "mobile" after), the way
  Presidio's context enhancement works.

Look-alikes score 0 whatever their shape: dates (``2024 01 15``,
``15.01.2024``), US ZIP+4 codes, SSN-shaped numbers, ISBNs and versions
(one-digit groups), house numbers before a street name, and numbers that an
"order", "invoice", "ticket", "ISBN"... word names, unless a phone word is
nearer.

``phonenumbers`` is imported on the first international candidate (it
comes with the ``safety`` extra); without it an international candidate
with 8 to 15 digits is taken on its shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pytest_llmops.safety.findings import Finding
from pytest_llmops.safety.numbers import named_as_other_number

PHONE = "PHONE_NUMBER"

#: A candidate scoring at least this is reported.
PHONE_THRESHOLD = 0.5

_SEP = r"[ .\-/]"
# An optional international prefix (+CC, (+CC), +(CC), 00CC) or a trunk digit before brackets
# (Russian "8 (066)", Canadian "1 (786)"); an optional "(0)" or "(area)"; 1-6 groups; an extension.
_PHONE_RE = re.compile(
    r"(?<![\w+(.\-/$#\u00a3\u20ac\u00a5])"
    r"(?:(?:\+\d{1,3}|\(\+\d{1,3}\)|\+\(\d{1,3}\)|00\d{1,3})" + _SEP + r"? ?|[18] ?(?=\(\d))?"
    r"(?:\(0\) ?)?"
    r"(?:\(\d{1,5}\)" + _SEP + r"? ?)?"
    r"\d{1,12}(?:(?:" + _SEP + r" ?)\d{1,8}){0,5}"
    r"(?: ?(?:x|ext\.?|extension) ?\d{1,6})?"
    r"(?![\w/]|[.\-][\dXx])",  # not cut from a longer number or an ISBN ending in X
    re.IGNORECASE,
)
_INTERNATIONAL_RE = re.compile(r"^(?:\+|\(\+|00[1-9])")
_NANP_RE = re.compile(r"(?:(?:\+?1|001)[ .\-]?)?(?:\(\d{3}\)\s?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")
_SSN_SHAPE_RE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_ZIP4_RE = re.compile(r"^\d{5}-\d{4}$")
_EXTENSION_RE = re.compile(r"(?:x|ext\.?|extension)\s?\d{1,6}$", re.IGNORECASE)
_DAY, _MONTH, _YEAR = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])", r"(?:1[89]|20)\d\d"
_DATE_RE = re.compile(
    rf"^(?:{_YEAR}([-./ ]){_MONTH}\1{_DAY}|{_DAY}([-./ ]){_MONTH}\2{_YEAR}|{_MONTH}([-./ ]){_DAY}\3{_YEAR}"
    rf"|\d{{4}}[-./]\d{{1,2}}[-./]\d{{1,2}}|\d{{1,2}}[-./]\d{{1,2}}[-./]\d{{4}})$"
)
_GROUP_SPLIT_RE = re.compile(r"[ .\-/()]+")
_PHONE_BEFORE_RE = re.compile(
    r"\b(?:phone|telephone|tel|mobile|cell|cellphone|fax|call(?:ed|ing)?|ring|dial|reach|text|sms|whatsapp|"
    r"contact|hotline|landline|voicemail|answering)\b\.?[^\n\d]{0,25}$",
    re.IGNORECASE,
)
_PHONE_AFTER_RE = re.compile(r"^[\s\-,:(]{0,3}(?:office|fax|mobile|cell|home|work|tel|phone|landline)\b", re.IGNORECASE)
# A number followed by a street name is a house number ("call a taxi to 14 3684 Court Street").
_STREET_AFTER_RE = re.compile(
    r"^\s+(?:[A-Z][\w'.\-]*\s+){1,3}?(?:street|st|road|rd|avenue|ave|lane|ln|la|court|ct|drive|dr|way|boulevard|blvd|"
    r"place|pl|square|sq|terrace|highway|hwy|str|strasse|straße|weg|plaza|parkway|pkwy|circle|cir)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _phonenumbers() -> Any:
    """The ``phonenumbers`` module, or ``None`` where it is not installed."""
    try:
        import phonenumbers
    except ImportError:
        return None
    return phonenumbers


def international_score(body: str) -> float:
    """0.9 for a valid international number, 0.75 for a possible one (right length for its country), else 0.3."""
    digits = sum(c.isdigit() for c in body)
    if not 8 <= digits <= 15:
        return 0.3  # "+44 1234": too short to dial from abroad (E.164 allows 15 digits at most)
    phonenumbers = _phonenumbers()
    if phonenumbers is None:
        return 0.85  # no metadata here: the shape is all there is
    compact = body.replace("(+", "+").replace("+(", "+").replace("(0)", "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        return 0.3
    if phonenumbers.is_valid_number(number):
        return 0.9
    if phonenumbers.is_possible_number(number):
        return 0.75
    return 0.3


def _national_shape_score(body: str, groups: list[str], digits: int) -> float:
    """How phone-like a national number is from its grouping alone."""
    if re.match(r"(?:[18] ?)?\(", body) and len(groups) >= 2 and 7 <= digits <= 12:
        return 0.7  # "(0161) 496 0066", "(07) 40669074"
    if len(groups) >= 2 and 9 <= digits <= 13 and groups[0].startswith("0") and min(map(len, groups[1:])) >= 2:
        return 0.6  # a trunk 0: "04 15 39 15 00", "080-9141-7776", "0 32 406 81 24"
    separators = re.findall(r"[ .\-/]+", body)
    if (
        len(groups) >= 3
        and 9 <= digits <= 12
        and 2 <= len(groups[0]) <= 5
        and (len(groups[0]) < len(groups[1]) or groups[0].startswith("0"))
        and separators[0] in (" ", "/")
        and len(set(separators[1:])) == 1
        and all(3 <= len(g) <= 4 for g in groups[1:])
    ):
        return 0.55  # an area code, then the number: "13 5017-7153", "68/837-1046"
    if (
        len(groups) >= 3
        and 8 <= digits <= 11
        and all(2 <= len(g) <= 4 for g in groups)
        and len(set(separators)) == 1
        and not all(len(g) == 3 for g in groups[1:])  # "10 000 000": thousands, not a phone number
        and not all(len(g) == 4 and g[:2] in ("19", "20") for g in groups)  # "2019 2020 2021"
    ):
        return 0.55  # "91 41 77 76", "02-0080-6360"
    if len(groups) >= 2 and all(1 <= len(g) <= 8 for g in groups):
        return 0.35
    if len(groups) == 1 and 7 <= digits <= 12:
        return 0.25
    return 0.2


_DIGIT_BEFORE_RE = re.compile(r"\d[^\w\n]{1,4}$")
_DIGIT_AFTER_RE = re.compile(r"^[^\w\n]{1,4}\d")


def _in_number_list(text: str, start: int, end: int) -> bool:
    """Other figures stand right before or after ``text[start:end]`` ("2006 -- 08 2004 2002 -- 03")."""
    return bool(_DIGIT_BEFORE_RE.search(text[max(0, start - 5) : start]) or _DIGIT_AFTER_RE.match(text[end : end + 5]))


def phone_score(text: str, start: int, end: int) -> float:
    """How much ``text[start:end]`` looks like a phone number, from its shape and the words around it."""
    value = text[start:end]
    body = _EXTENSION_RE.sub("", value).strip()
    digits = sum(c.isdigit() for c in body)
    if digits < 6 or digits > 15 or _DATE_RE.match(body) or _SSN_SHAPE_RE.match(body) or _ZIP4_RE.match(body):
        return 0.0  # an SSN-shaped number that failed SSN validation is not a phone number either
    groups = [g for g in _GROUP_SPLIT_RE.split(body.lstrip("+")) if g]
    before = text[max(0, start - 60) : start]
    after = text[end : end + 40]
    if _STREET_AFTER_RE.match(after):
        return 0.0
    phone_word = _PHONE_BEFORE_RE.search(before) is not None or _PHONE_AFTER_RE.match(after) is not None
    if not phone_word and named_as_other_number(text, start):
        return 0.0
    if _INTERNATIONAL_RE.match(body) and (body[0] != "0" or len(groups) > 1):  # "0010747854903" is an EAN
        score = international_score(body)
    elif _EXTENSION_RE.search(value) or _NANP_RE.fullmatch(body):
        score = 0.85
    elif len(groups) > 2 and min(map(len, groups[1:])) == 1 and "(" not in body:
        score = 0.2  # one-digit groups: an ISBN ("978-3-16-148410-0") or a version ("10.0.19041.1")
    else:
        score = _national_shape_score(body, groups, digits)
        if score < 0.7 and _in_number_list(text, start, end):
            score = min(score, 0.2)  # "caps: 53 ? 10 23 22 56 32 25 ? 37": a run of figures, not a phone number
    if phone_word:
        score += 0.45
    return min(score, 1.0)


def find_phones(text: str) -> Iterable[Finding]:
    """Every phone number in ``text`` scoring at least ``PHONE_THRESHOLD``."""
    for m in _PHONE_RE.finditer(text):
        start, end = m.span()
        score = phone_score(text, start, end)
        if score >= PHONE_THRESHOLD:
            yield Finding(PHONE, start, end, m.group(), "phone", round(score, 2))
