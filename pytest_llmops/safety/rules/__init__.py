"""Hand-written injection patterns, kept as data (``injection.json``) and compiled on first use.

Standard library only.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

RULES_PATH = Path(__file__).with_name("injection.json")
FORMAT = "pytest-llmops-injection-rules/1"
WHERE = ("any", "document")


@dataclass(frozen=True)
class Rule:
    """One pattern: a match sets the injection score to at least ``score``."""

    name: str
    category: str
    score: float
    where: str
    pattern: re.Pattern[str]
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleHit:
    rule: Rule
    start: int
    end: int


def _parse(data: dict, path: Path) -> tuple[Rule, ...]:
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}")
    rules = []
    for number, item in enumerate(data.get("rules", [])):
        where = f"{path}: rules[{number}] ({item.get('name', '?')})"
        missing = {"name", "category", "score", "where", "pattern"} - set(item)
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        if item["where"] not in WHERE:
            raise ValueError(f"{where}: 'where' must be one of {WHERE}, got {item['where']!r}")
        if not 0.0 < float(item["score"]) <= 1.0:
            raise ValueError(f"{where}: score must be in (0, 1], got {item['score']!r}")
        try:
            pattern = re.compile(item["pattern"], re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"{where}: bad pattern: {error}") from None
        rules.append(
            Rule(
                name=item["name"],
                category=item["category"],
                score=float(item["score"]),
                where=item["where"],
                pattern=pattern,
                examples=tuple(item.get("examples", ())),
                counter_examples=tuple(item.get("counter_examples", ())),
            )
        )
    return tuple(rules)


@functools.cache
def load_rules(path: str | None = None) -> tuple[Rule, ...]:
    """The rules in ``path`` (default: the shipped ``injection.json``)."""
    source = Path(path) if path else RULES_PATH
    return _parse(json.loads(source.read_text(encoding="utf-8")), source)


def match_rules(text: str, *, document: bool, rules: tuple[Rule, ...] | None = None) -> list[RuleHit]:
    """Every rule that matches ``text``; ``document`` adds the rules meant for documents only.

    Offsets refer to ``text`` as given when NFKC normalisation kept its length
    (the usual case), else to the normalised text.
    """
    normal = unicodedata.normalize("NFKC", text)
    hits = []
    for rule in rules if rules is not None else load_rules():
        if rule.where == "document" and not document:
            continue
        match = rule.pattern.search(normal)
        if match:
            hits.append(RuleHit(rule, match.start(), match.end()))
    return hits
