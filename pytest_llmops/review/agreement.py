"""Agreement between reviewers, and between the judge and the reviewers.

- Two reviewers: Cohen's kappa (scikit-learn's ``cohen_kappa_score`` when it
  is installed, else the formula below, which gives the same number).
- Three or more: Fleiss' kappa (``statsmodels`` when installed, else the
  formula) over the items rated by the most common number of reviewers, as
  Fleiss' kappa needs the same number of ratings for every item.
- Judge vs human: per judge model and template, the share of items where the
  judge's verdict equals the reviewers' majority, with a Wilson interval,
  and Cohen's kappa of the two.

Formulas (n items, k categories):

    Cohen:  p_o = share of items where the two agree
            p_e = sum over categories c of p_A(c) * p_B(c)
            kappa = (p_o - p_e) / (1 - p_e)
    Fleiss: each item i rated by m reviewers, n_ic of them chose c
            P_i = (sum_c n_ic^2 - m) / (m (m - 1));  P = mean of P_i
            p_c = sum_i n_ic / (n m);  P_e = sum_c p_c^2
            kappa = (P - P_e) / (1 - P_e)

When every rating is the same category, p_e = 1 and kappa is undefined: it is
reported as 1.0 if everyone agreed (as ``llmops calibrate`` does), never NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llmops.results.stats import wilson_interval

LABELS = ("pass", "fail")


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (None for no items)."""
    if len(a) != len(b):
        raise ValueError(f"two raters must label the same items: {len(a)} vs {len(b)} labels")
    if not a:
        return None
    if len(set(a) | set(b)) < 2:
        return 1.0
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        return _cohen_formula(a, b)
    value = float(cohen_kappa_score(list(a), list(b)))
    return None if math.isnan(value) else round(value, 6)


def _cohen_formula(a: Sequence[str], b: Sequence[str]) -> float | None:
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[c] * count_b[c] for c in set(a) | set(b)) / (n * n)
    if expected == 1:
        return 1.0 if observed == 1 else None
    return round((observed - expected) / (1 - expected), 6)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a table with one row per item and one count per category."""
    rows = [list(map(int, row)) for row in table]
    if not rows:
        return None
    raters = {sum(row) for row in rows}
    if len(raters) != 1 or next(iter(raters)) < 2:
        raise ValueError(f"Fleiss' kappa needs the same number (>= 2) of ratings per item, got {sorted(raters)}")
    try:
        from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss
    except ImportError:
        return _fleiss_formula(rows)
    totals = [sum(column) for column in zip(*rows)]
    if sum(1 for t in totals if t) < 2:
        return 1.0
    value = float(statsmodels_fleiss(rows, method="fleiss"))
    return None if math.isnan(value) else round(value, 6)


def _fleiss_formula(rows: list[list[int]]) -> float | None:
    n, m = len(rows), sum(rows[0])
    per_item = [(sum(c * c for c in row) - m) / (m * (m - 1)) for row in rows]
    observed = sum(per_item) / n
    shares = [sum(column) / (n * m) for column in zip(*rows)]
    expected = sum(p * p for p in shares)
    if expected == 1:
        return 1.0 if observed == 1 else None
    return round((observed - expected) / (1 - expected), 6)


def between_reviewers(items: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Inter-reviewer agreement over ``{item_id: {reviewer: label}}`` (items with two or more labels)."""
    shared = {item: votes for item, votes in items.items() if len(votes) >= 2}
    reviewers = sorted({r for votes in shared.values() for r in votes})
    if not shared:
        return {"method": "none", "kappa": None, "n_items": 0, "reviewers": reviewers,
                "reason": "no item has labels from two reviewers"}
    if len(reviewers) == 2:
        first, second = reviewers
        a = [votes[first] for votes in shared.values()]
        b = [votes[second] for votes in shared.values()]
        agree = sum(x == y for x, y in zip(a, b))
        return {"method": "Cohen's kappa", "kappa": cohen_kappa(a, b), "n_items": len(a), "reviewers": reviewers,
                "observed_agreement": round(agree / len(a), 6)}
    sizes = Counter(len(votes) for votes in shared.values())
    size = max(sizes, key=lambda s: (sizes[s], s))
    rows = [[Counter(votes.values())[c] for c in LABELS] for votes in shared.values() if len(votes) == size]
    left_out = len(shared) - len(rows)
    result = {"method": "Fleiss' kappa", "kappa": fleiss_kappa(rows), "n_items": len(rows), "reviewers": reviewers,
              "ratings_per_item": size}
    if left_out:
        result["reason"] = f"{left_out} item(s) with another number of reviewers left out (Fleiss needs equal counts)"
    return result


def judge_vs_human(pairs: Sequence[tuple[str, str, str]], confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per group (judge model and template): agreement of the judge's verdict with the human majority.

    ``pairs`` holds ``(group, judge_verdict, human_verdict)`` for each item with both.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for group, judge, human in pairs:
        groups.setdefault(group, []).append((judge, human))
    rows = []
    for group, items in sorted(groups.items()):
        agree = sum(j == h for j, h in items)
        low, high = wilson_interval(agree, len(items), confidence)
        rows.append({
            "group": group,
            "n_items": len(items),
            "agreement": round(agree / len(items), 6),
            "interval": [round(low, 6), round(high, 6)],
            "confidence": confidence,
            "kappa": cohen_kappa([j for j, _ in items], [h for _, h in items]),
            "judge_pass_human_fail": sum(j == "pass" and h == "fail" for j, h in items),
            "judge_fail_human_pass": sum(j == "fail" and h == "pass" for j, h in items),
        })
    return rows
