"""Preference pairs for RLHF/DPO training, taken from a run's judge scores.

A pair is one prompt with a chosen and a rejected answer. Two sources:

- a ``pairwise`` score (``assert_preferred``) whose judge preferred the same
  response in both orders; ties and pairs where the orders disagree
  (position bias) say nothing reliable about preference and are dropped, and
  counted;
- a repeated case (``llm_eval(repeat=k)``) whose samples of the same prompt a
  judge scored (``rubric`` and other judge checks that keep ``input`` and
  ``output``): the best sample against the worst, when their scores differ.

The texts come from ``details["judged"]``, which judge scores keep only when
the case is up for review (``--llmops-review-sample=0`` keeps them on every
judged case). Standard library only: no pytest, no TRL.

Formats, one JSON object a line:

- ``trl``: ``{"prompt", "chosen", "rejected"}`` (TRL's DPOTrainer);
- ``openai-dpo``: ``{"input": {"messages": [...]}, "preferred_output": [...],
  "non_preferred_output": [...]}`` (OpenAI fine-tuning, method ``dpo``);
- ``kto``: ``{"prompt", "completion", "label"}``, two lines a pair (TRL's KTOTrainer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmops.results.models import RunResult, ScoreResult
from pytest_llmops.review.items import JUDGED_KEY

FORMATS = ("trl", "openai-dpo", "kto")
KEEP_TEXTS = "--llmops-review-sample=0"


class PreferenceExportError(Exception):
    """The results hold no pair that can be exported; the message says what to turn on."""


@dataclass(frozen=True)
class PreferencePair:
    """One prompt, the answer the judge preferred in both orders, and the other one."""

    prompt: str
    chosen: str
    rejected: str
    nodeid: str


@dataclass
class PairwiseTally:
    """How many pairwise scores the run held, and why each one not exported was dropped."""

    seen: int = 0
    kept: int = 0
    orders_disagree: int = 0
    tie: int = 0
    unmeasured: int = 0
    no_texts: int = 0

    def notes(self) -> list[str]:
        """One line per reason a pair was dropped (none when all were kept)."""
        lines = []
        if self.orders_disagree:
            lines.append(f"dropped {self.orders_disagree} pair(s) whose two orders disagreed (position bias or a tie "
                         "in one order)")
        if self.tie:
            lines.append(f"dropped {self.tie} pair(s) called a tie (by the judge in both orders, or rewards within "
                         "the margin)")
        if self.unmeasured:
            lines.append(f"dropped {self.unmeasured} unmeasured pairwise score(s)")
        if self.no_texts:
            lines.append(f"dropped {self.no_texts} pair(s) without their texts: run with {KEEP_TEXTS} "
                         "(or llm_eval(review=...)) so judge scores keep what they judged")
        return lines


def is_pairwise(score: ScoreResult) -> bool:
    """Whether a score is a both-orders pairwise comparison (``pairwise`` / ``assert_preferred``)."""
    return "winner" in score.details and "consistent" in score.details


def pairwise_pairs(run: RunResult) -> tuple[list[PreferencePair], PairwiseTally]:
    """The pairs of every pairwise score whose orders agreed on a winner, and the tally of the rest."""
    pairs: list[PreferencePair] = []
    tally = PairwiseTally()
    for case in run.cases:
        for score in case.scores:
            if not is_pairwise(score):
                continue
            tally.seen += 1
            pair = _pair_of(case.nodeid, score, tally)
            if pair is not None:
                tally.kept += 1
                pairs.append(pair)
    return pairs, tally


def _pair_of(nodeid: str, score: ScoreResult, tally: PairwiseTally) -> PreferencePair | None:
    """The pair of one pairwise score, or None (counted in ``tally``) when it shows no reliable preference."""
    details = score.details
    if score.verdict == "unmeasured":
        tally.unmeasured += 1
        return None
    if not details.get("consistent"):
        tally.orders_disagree += 1
        return None
    if details.get("winner") not in ("a", "b"):
        tally.tie += 1
        return None
    judged = details.get(JUDGED_KEY) or {}
    texts = [judged.get(key) for key in ("input", "response_a", "response_b")]
    if not all(isinstance(text, str) for text in texts):
        tally.no_texts += 1
        return None
    prompt, a, b = texts
    chosen, rejected = (a, b) if details["winner"] == "a" else (b, a)
    return PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, nodeid=nodeid)


@dataclass
class RepeatTally:
    """How many repeated, judge-scored prompts the run held, and why each one not exported was dropped."""

    seen: int = 0
    kept: int = 0
    same_score: int = 0
    no_texts: int = 0

    def notes(self) -> list[str]:
        """One line per reason a repeated prompt gave no pair."""
        lines = []
        if self.same_score:
            lines.append(f"dropped {self.same_score} repeated prompt(s) whose samples all scored the same")
        if self.no_texts:
            lines.append(f"dropped {self.no_texts} repeated prompt(s) without their input and output texts: run with "
                         f"{KEEP_TEXTS} and give the judge check its input=")
        return lines


def repeat_pairs(run: RunResult) -> tuple[list[PreferencePair], RepeatTally]:
    """Best vs worst sample of each repeated case's judge check, where their scores differ."""
    pairs: list[PreferencePair] = []
    tally = RepeatTally()
    for case in run.cases:
        if not any(score.name == "repeat_pass_rate" for score in case.scores):
            continue
        groups: dict[tuple[str, str], list[ScoreResult]] = {}
        for score in case.scores:
            if score.value is None or is_pairwise(score) or "judge_model" not in score.details:
                continue
            judged = score.details.get(JUDGED_KEY) or {}
            # One group per check and prompt: samples are compared only with samples of the same question.
            key = (score.name, json.dumps({k: v for k, v in judged.items() if k != "output"}, sort_keys=True))
            groups.setdefault(key, []).append(score)
        for scores in groups.values():
            tally.seen += 1
            pair = _best_vs_worst(case.nodeid, scores, tally)
            if pair is not None:
                tally.kept += 1
                pairs.append(pair)
    return pairs, tally


def _best_vs_worst(nodeid: str, scores: list[ScoreResult], tally: RepeatTally) -> PreferencePair | None:
    """The pair of one repeated prompt's samples, or None (counted in ``tally``)."""
    judged = scores[0].details.get(JUDGED_KEY) or {}
    outputs = [(score.details.get(JUDGED_KEY) or {}).get("output") for score in scores]
    if not (isinstance(judged.get("input"), str) and judged["input"]) or not all(isinstance(o, str) for o in outputs):
        tally.no_texts += 1
        return None
    sign = 1.0 if scores[0].higher_is_better else -1.0
    ranked = sorted(zip(scores, outputs), key=lambda pair: sign * float(pair[0].value))  # type: ignore[arg-type]
    (worst, rejected), (best, chosen) = ranked[0], ranked[-1]
    if best.value == worst.value or chosen == rejected:
        tally.same_score += 1
        return None
    return PreferencePair(prompt=judged["input"], chosen=chosen, rejected=rejected, nodeid=nodeid)


@dataclass
class ReviewTally:
    """How many reviewed prompts the label store held, and why each one not exported was dropped."""

    seen: int = 0
    kept: int = 0
    one_sided: int = 0
    no_majority: int = 0
    no_texts: int = 0

    def notes(self) -> list[str]:
        """One line per reason reviewed items gave no pair."""
        lines = []
        if self.one_sided:
            lines.append(f"dropped {self.one_sided} reviewed prompt(s) whose answers all got the same verdict")
        if self.no_majority:
            lines.append(f"dropped {self.no_majority} reviewed item(s) whose reviewers tied")
        if self.no_texts:
            lines.append(f"dropped {self.no_texts} reviewed item(s) without an input and an output (pairwise items, "
                         "or a check given no input=)")
        return lines


def review_pairs(labels: Iterable[dict[str, Any]]) -> tuple[list[PreferencePair], ReviewTally]:
    """Every (passed, failed) pair of answers the reviewers' majority judged for the same prompt and check."""
    from pytest_llmops.review.labels import by_item, majority

    tally = ReviewTally()
    groups: dict[tuple[str, str], dict[str, list[tuple[str, str]]]] = {}
    for group in by_item(labels).values():
        verdict, _ = majority(group)
        judged = group[0].get("judged") or {}
        prompt, output = judged.get("input"), judged.get("output")
        if not (isinstance(prompt, str) and prompt and isinstance(output, str)):
            tally.no_texts += 1
            continue
        if verdict is None:
            tally.no_majority += 1
            continue
        key = (str(group[0]["score"]), json.dumps({k: v for k, v in judged.items() if k != "output"}, sort_keys=True))
        groups.setdefault(key, {"pass": [], "fail": []})[verdict].append((output, str(group[0]["nodeid"])))
    pairs: list[PreferencePair] = []
    for key, verdicts in groups.items():
        tally.seen += 1
        found = [(good, bad, nodeid) for good, nodeid in verdicts["pass"] for bad, _ in verdicts["fail"] if good != bad]
        if not found:
            tally.one_sided += 1
            continue
        tally.kept += 1
        prompt = json.loads(key[1])["input"]
        pairs.extend(PreferencePair(prompt=prompt, chosen=good, rejected=bad, nodeid=nodeid)
                     for good, bad, nodeid in found)
    return pairs, tally


def rows(pairs: Iterable[PreferencePair], fmt: str) -> Iterator[dict[str, Any]]:
    """The JSONL rows of ``pairs`` in format ``fmt`` (one of ``FORMATS``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown preference format {fmt!r}: choose one of {', '.join(FORMATS)}")
    for pair in pairs:
        if fmt == "trl":
            yield {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
        elif fmt == "openai-dpo":
            yield {
                "input": {"messages": [{"role": "user", "content": pair.prompt}]},
                "preferred_output": [{"role": "assistant", "content": pair.chosen}],
                "non_preferred_output": [{"role": "assistant", "content": pair.rejected}],
            }
        else:  # kto: unpaired, one desirable and one undesirable completion per pair
            yield {"prompt": pair.prompt, "completion": pair.chosen, "label": True}
            yield {"prompt": pair.prompt, "completion": pair.rejected, "label": False}


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote and dropped, per source."""

    pairwise: PairwiseTally
    repeats: RepeatTally
    reviews: ReviewTally
    written: int

    def notes(self) -> list[str]:
        return self.pairwise.notes() + self.repeats.notes() + self.reviews.notes()


def export_preferences(
    run: RunResult, fmt: str, out: Path, labels: Iterable[dict[str, Any]] = ()
) -> ExportSummary:
    """Write the pairs of the run (and of its review ``labels``) to ``out`` as JSONL; raises when there is none."""
    agreed, by_judge = pairwise_pairs(run)
    sampled, by_repeat = repeat_pairs(run)
    reviewed, by_review = review_pairs(labels)
    pairs = [*agreed, *sampled, *reviewed]
    summary = ExportSummary(by_judge, by_repeat, by_review, len(pairs))
    if by_judge.seen == 0 and by_repeat.seen == 0 and by_review.seen == 0:
        raise PreferenceExportError(
            "the results hold no pairwise judge score and no repeated case scored by a judge, and no review labels "
            "were given: preference pairs come from pairwise() / assert_preferred(), from llm_eval(repeat=k) with a "
            "judge check, or from --labels .llmops/review/labels.jsonl"
        )
    if not pairs:
        raise PreferenceExportError(
            f"none of the {by_judge.seen} pairwise score(s), {by_repeat.seen} repeated prompt(s) and "
            f"{by_review.seen} reviewed prompt(s) gives a pair: " + "; ".join(summary.notes())
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows(pairs, fmt):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return summary
