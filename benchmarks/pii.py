"""Benchmark ``find_pii``: per-type precision, recall and F1 on data the rules were not built on, and speed.

Prints:

1. Presidio's synthetic ``pii/presidio_generated_large.json``: exact-span P/R/F1
   per pattern type, and for person names (``types=["person"]``) exact-span,
   overlap and text-level ("does the text name someone?", what an assertion
   decides) P/R/F1, on the templates the name rules were tuned on (even
   ``template_id``) and on the held-out ones (odd). One-word title spans
   ("Mr.", "dr.") that Presidio labels PERSON are left out of the gold names.
   The pattern types were written against this file in earlier work: their
   figures here are not held out.
2. With ``faker`` installed (not a project dependency: ``pip install faker``):
   sets built from Faker's generators, which no rule here was written from:
   card numbers of every network Faker makes (plain, grouped by spaces, by
   dashes), phone numbers of every locale in sentences with no phone word
   (locales split in two: the even ones were looked at while writing the
   phone rules, the odd ones are held out), and look-alikes that must not be
   flagged (dates in eight formats, ISBN-10/13, EAN-13, versions, prices,
   order and invoice numbers, ZIP+4, times, coordinates, year ranges).
   Numbers written as a bare run of digits are counted apart: without a phone
   word nothing tells them from an order number, so they are not flagged.
3. False alarms on ordinary text: findings per type on 8,103 English prompts
   (``benign_prompts/``) and 4,994 questions in 11 other languages
   (``multilingual_benign/``). Names there are often real people's, so name
   precision on real text comes from ``data/pii_name_sample_labels.json``:
   100 name findings drawn at random from the files no name rule was tuned
   on (self_instruct, xstest_safe, bipia_task_instructions, xquad), each
   judged by hand (offsets only; no text is copied).
4. Throughput on one core (CPU time of this process): the pattern path
   (default types) and with person names, against a floor of 1,000 texts/s
   for the pattern path. Exits 1 below the floor.

Usage::

    python benchmarks/pii.py [--data ../shared/datasets] [--faker-samples 300]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_llmops.safety.names import find_names  # noqa: E402
from pytest_llmops.safety.phones import _phonenumbers  # noqa: E402
from pytest_llmops.safety.pii import DEFAULT_TYPES, find_pii  # noqa: E402

PATTERN_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")
TITLE_SPANS = {"mr", "mr.", "mrs", "mrs.", "ms", "ms.", "miss", "dr", "dr.", "prof.", "sir", "madam", "mister", "mx."}
FLOOR_TEXTS_PER_S = 1_000


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def row(label: str, tp: int, fp: int, fn: int, extra: str = "") -> str:
    p, r, f1 = prf(tp, fp, fn)
    return f"  {label:<34} {tp + fn:>5} {tp:>5} {fp:>4} {fn:>4} {p:>9.3f} {r:>7.3f} {f1:>6.3f}  {extra}"


HEADER = f"  {'':<34} {'gold':>5} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7} {'F1':>6}"


# ------------------------------------------------------------------ Presidio


def presidio(data: Path) -> list[dict]:
    return json.loads((data / "pii" / "presidio_generated_large.json").read_text(encoding="utf-8"))


def presidio_patterns(rows: list[dict]) -> None:
    tp, fp, fn = Counter(), Counter(), Counter()
    for r in rows:
        gold = {
            (s["start_position"], s["end_position"], s["entity_type"])
            for s in r["spans"]
            if s["entity_type"] in PATTERN_TYPES
        }
        pred = {(f.start, f.end, f.kind) for f in find_pii(r["full_text"]) if f.kind in PATTERN_TYPES}
        for kind in PATTERN_TYPES:
            g = {x for x in gold if x[2] == kind}
            p = {x for x in pred if x[2] == kind}
            tp[kind] += len(g & p)
            fp[kind] += len(p - g)
            fn[kind] += len(g - p)
    print(f"\n== Presidio synthetic set, pattern types ({len(rows)} texts; exact span and type; not held out)")
    print(HEADER)
    for kind in PATTERN_TYPES:
        print(row(kind, tp[kind], fp[kind], fn[kind]))


def presidio_names(rows: list[dict]) -> None:
    print("\n== Presidio synthetic set, person names (find_pii(types=['person']))")
    print(HEADER)
    for label, chosen in (
        ("tuned on (even template_id)", [r for r in rows if r["template_id"] % 2 == 0]),
        ("held out (odd template_id)", [r for r in rows if r["template_id"] % 2 == 1]),
        ("all", rows),
    ):
        span = Counter()
        text = Counter()
        overlap = 0
        for r in chosen:
            gold = {
                (s["start_position"], s["end_position"])
                for s in r["spans"]
                if s["entity_type"] == "PERSON" and s["entity_value"].strip().lower() not in TITLE_SPANS
            }
            pred = {(f.start, f.end) for f in find_pii(r["full_text"], types=["person"])}
            span["tp"] += len(gold & pred)
            span["fp"] += len(pred - gold)
            span["fn"] += len(gold - pred)
            overlap += sum(1 for g in gold if any(p[0] < g[1] and g[0] < p[1] for p in pred))
            text["tp"] += bool(gold) and bool(pred)
            text["fp"] += not gold and bool(pred)
            text["fn"] += bool(gold) and not pred
        n_gold = span["tp"] + span["fn"]
        print(row(f"{label}: spans", span["tp"], span["fp"], span["fn"], f"overlap recall {overlap / n_gold:.3f}"))
        print(row(f"{label}: texts", text["tp"], text["fp"], text["fn"]))


# ------------------------------------------------------------------ Faker sets


def _faker():
    try:
        from faker import Faker
        from faker.config import AVAILABLE_LOCALES
    except ImportError:
        return None, ()
    warnings.filterwarnings("ignore", module="faker")
    return Faker, tuple(sorted(set(AVAILABLE_LOCALES) - {"fr_QC"}))  # fr_QC: a deprecated alias of fr_CA


_CARD_KINDS = ("amex", "diners", "discover", "jcb15", "jcb16", "maestro", "mastercard", "visa13", "visa16", "visa19")
_NEUTRAL = ("Please note {} for later.", "{}", "Her details: {}.", "It is {} - see the form.", "Ask for {} (Mon-Fri).")


#: How cards are printed, by length: 4-4-4-4, Amex's 4-6-5, Diners' 4-6-4, 13-digit Visa's 4-3-3-3...
_PRINTED_GROUPS = {12: (4, 4, 4), 13: (4, 3, 3, 3), 14: (4, 6, 4), 15: (4, 6, 5), 16: (4, 4, 4, 4), 19: (4, 4, 4, 4, 3)}


def _grouped(number: str, separator: str) -> str:
    groups, start = [], 0
    for size in _PRINTED_GROUPS.get(len(number), (len(number),)):
        groups.append(number[start : start + size])
        start += size
    return separator.join(groups)


def _score(found: Iterable[tuple[str, str]], kind: str, expected: str | None) -> tuple[int, int, int]:
    hits = [text for k, text in found if k == kind]
    tp = int(expected is not None and expected in hits)
    return tp, len(hits) - tp, int(expected is not None and not tp)


def faker_cards(faker_cls, samples: int) -> None:
    fake = faker_cls("en_US")
    fake.seed_instance(20261202)
    rng = random.Random(1)
    print(f"\n== Card numbers from Faker's generators ({samples} per network, each plain, space- and dash-grouped)")
    print(HEADER)
    total = Counter()
    for kind in _CARD_KINDS:
        counts = Counter()
        for _ in range(samples):
            number = fake.credit_card_number(kind)
            for written in (number, _grouped(number, " "), _grouped(number, "-")):
                text = rng.choice(_NEUTRAL).format(written)
                tp, fp, fn = _score(((f.kind, f.text) for f in find_pii(text)), "CREDIT_CARD", written)
                counts.update(tp=tp, fp=fp, fn=fn)
        total.update(counts)
        print(row(kind, counts["tp"], counts["fp"], counts["fn"]))
    print(row("all networks", total["tp"], total["fp"], total["fn"]))


_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%Y %m %d", "%d-%m-%Y", "%Y/%m/%d", "%d %m %Y")


def _lookalikes(fake, rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(n):
        day = fake.date_object()
        out += [day.strftime(f) for f in _DATE_FORMATS]
        out += [
            fake.isbn10(),
            fake.isbn13(),
            fake.isbn13().replace("-", " "),
            f"ISBN {fake.isbn10()}",
            fake.ean13(),
            f"v{rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 999)}",
            f"{rng.randint(1, 20)}.{rng.randint(0, 9)}.{rng.randint(1000, 30000)}.{rng.randint(1, 999)}",
            f"build {fake.numerify('##.##.####')}",
            f"${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)}",
            f"{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
            f"order #{fake.numerify('##########')}",
            f"Order {fake.numerify('####-####-##')}",
            f"invoice {fake.numerify('#### #### ####')}",
            f"{rng.randint(1950, 2024)}-{rng.randint(1950, 2024)}",
            fake.zipcode_plus4(),
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            f"{fake.latitude()} {fake.longitude()}",
            f"{rng.randint(10, 99)}.{rng.randint(10, 99)}.{rng.randint(10, 99)}",
        ]
    return out


def faker_phones(faker_cls, locales: tuple[str, ...], samples: int) -> None:
    rng = random.Random(2)
    print(f"\n== Phone numbers from Faker's {len(locales)} locales, no phone word ({samples // 10} per locale)")
    libphone = "with phonenumbers" if _phonenumbers() is not None else "WITHOUT phonenumbers (shape only)"
    print(f"  ({libphone}; 'formatted' = written with +, brackets or separators)")
    print(HEADER)
    for label, parity in (("looked at (even locales)", 0), ("held out (odd locales)", 1)):
        counts = {"formatted": Counter(), "bare digits": Counter()}
        for index, locale in enumerate(locales):
            if index % 2 != parity:
                continue
            fake = faker_cls(locale)
            fake.seed_instance(index)
            if not hasattr(fake, "phone_number"):
                continue
            for _ in range(samples // 10):
                number = fake.phone_number()
                group = "formatted" if re.search(r"[ .\-/()+]", number) else "bare digits"
                text = rng.choice(_NEUTRAL).format(number)
                tp, fp, fn = _score(((f.kind, f.text) for f in find_pii(text)), "PHONE_NUMBER", number)
                counts[group].update(tp=tp, fp=fp, fn=fn)
        for group, c in counts.items():
            print(row(f"{label}, {group}", c["tp"], c["fp"], c["fn"]))
    fake = faker_cls("en_US")
    fake.seed_instance(3)
    negatives = _lookalikes(fake, rng, samples)
    flagged = Counter()
    examples: dict[str, str] = {}
    for value in negatives:
        for finding in find_pii(rng.choice(_NEUTRAL).format(value)):
            flagged[finding.kind] += 1
            examples.setdefault(finding.kind, value)
    print(
        f"  look-alikes: {len(negatives):,} dates, ISBNs, EANs, versions, prices, order numbers...: "
        + (", ".join(f"{k} {v} (e.g. {examples[k]!r})" for k, v in flagged.most_common()) or "none flagged")
    )


# ------------------------------------------------------------------ ordinary text


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def ordinary_texts(data: Path) -> dict[str, list[str]]:
    english = [r["text"] for f in sorted((data / "benign_prompts").glob("*.jsonl")) for r in _jsonl(f)]
    other = [r["text"] for r in _jsonl(data / "multilingual_benign" / "xquad_questions.jsonl")]
    return {"English prompts (benign_prompts/)": english, "11 languages (multilingual_benign/)": other}


def false_alarms(sets: dict[str, list[str]]) -> None:
    print("\n== Findings on ordinary text (most pattern findings are real addresses written in the prompts)")
    for label, texts in sets.items():
        found = Counter()
        examples: dict[str, list[str]] = {}
        for text in texts:
            for f in find_pii(text, types=[*DEFAULT_TYPES, "person"]):
                found[f.kind] += 1
                examples.setdefault(f.kind, []).append(f.text)
        texts_with_names = sum(1 for t in texts if any(True for _ in find_names(t)))
        print(f"  {label}, {len(texts):,} texts: " + (", ".join(f"{k} {v}" for k, v in found.most_common()) or "none"))
        share = texts_with_names / len(texts)
        print(f"    texts with a name found: {texts_with_names} ({share:.1%}); e.g. {examples.get('PERSON', [])[:8]}")


LABELS = Path(__file__).resolve().parent / "data" / "pii_name_sample_labels.json"


def labelled_name_sample(data: Path) -> None:
    """Precision of the name detector on hand-judged findings in real prompts and questions."""
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    rows: dict[str, list[str]] = {}
    still = people = 0
    for label in labels:
        lines = rows.setdefault(label["file"], (data / label["file"]).read_text(encoding="utf-8").split("\n"))
        text = json.loads(lines[label["line"]])["text"]
        if any((f.start, f.end) == (label["start"], label["end"]) for f in find_names(text)):
            still += 1
            people += label["person"]
    print(
        f"  name precision on {len(labels)} hand-judged findings in held-out real text: {people}/{still} = "
        f"{people / still:.2f} of those still found ({len(labels) - still} of the sample no longer found; "
        "a finding counts when it overlaps a person's or character's name)"
    )


# ------------------------------------------------------------------ speed


def texts_per_second(texts: list[str], call: Callable[[str], object]) -> float:
    start = time.process_time()
    for text in texts:
        call(text)
    return len(texts) / (time.process_time() - start)


def throughput(rows: list[dict], sets: dict[str, list[str]]) -> bool:
    texts = [r["full_text"] for r in rows] + [t for ts in sets.values() for t in ts][:8000]
    find_pii(texts[0], types=["person"])  # load the name lists and phonenumbers once
    patterns = texts_per_second(texts, find_pii)
    with_names = texts_per_second(texts, lambda t: find_pii(t, types=[*DEFAULT_TYPES, "person"]))
    ok = patterns >= FLOOR_TEXTS_PER_S
    print(f"\n== Throughput on one core, {len(texts):,} texts (Presidio's, then ordinary prompts)")
    verdict = "ok" if ok else "BELOW"
    print(f"  pattern path (default types): {patterns:>8,.0f} texts/s  (floor {FLOOR_TEXTS_PER_S:,}: {verdict})")
    print(f"  with person names:            {with_names:>8,.0f} texts/s")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument(
        "--faker-samples", type=int, default=300, help="card numbers per network; a tenth of it phones per locale"
    )
    args = parser.parse_args()
    if not (args.data / "pii").is_dir():
        parser.error(f"--data {args.data}: no pii/ folder there; point it at the shared datasets folder")
    rows = presidio(args.data)
    presidio_patterns(rows)
    presidio_names(rows)
    faker_cls, locales = _faker()
    if faker_cls is None:
        print("\n== Faker sets not built: faker is not installed here (pip install faker)")
    else:
        faker_cards(faker_cls, args.faker_samples)
        faker_phones(faker_cls, locales, args.faker_samples)
    sets = ordinary_texts(args.data)
    false_alarms(sets)
    labelled_name_sample(args.data)
    return 0 if throughput(rows, sets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
