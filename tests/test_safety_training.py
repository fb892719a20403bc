"""The training script's protocol on tiny synthetic data: weights, metrics, and train/inference parity."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
np = pytest.importorskip("numpy")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_safety as T  # noqa: E402

from pytest_llmops.safety.features import FeatureSpec  # noqa: E402
from pytest_llmops.safety.model import load_model  # noqa: E402


def test_auroc_matches_hand_computed_values():
    labels = np.array([1, 1, 0, 0])
    assert T.auroc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 1.0
    assert T.auroc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 0.0
    assert T.auroc(np.array([0.5, 0.5, 0.5, 0.5]), labels) == 0.5  # ties count half
    assert T.auroc(np.array([0.9, 0.3, 0.5, 0.1]), labels) == 0.75
    assert T.auroc(np.array([0.9]), np.array([1])) is None


def test_source_weights_balance_classes_and_damp_big_sources():
    rows = [T.Row("x", 1, "big")] * 100 + [T.Row("x", 1, "small")] * 4 + [T.Row("x", 0, "neg")] * 50
    w = T.source_weights(rows)
    labels = np.array([r.label for r in rows])
    assert w[labels == 1].sum() == pytest.approx(w[labels == 0].sum())
    big, small = w[:100].sum(), w[100:104].sum()
    assert big / small == pytest.approx(np.sqrt(100 / 4))  # n ** 0.5, not n


def test_quality_and_threshold():
    q = T.quality(np.array([0.9, 0.6, 0.4, 0.7, 0.1]), np.array([1, 1, 1, 0, 0]), 0.5)
    assert (q.precision, q.recall, q.fpr) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 0.5)
    rows = [T.Row("x", 0, "prompts")] * 100
    probs = np.linspace(0, 1, 100)
    task = T.Task("t", rows, max_fpr=0.05, fpr_groups=("prompts",))
    t = T.threshold_for(probs, rows, task)
    assert (probs >= t).mean() <= 0.05


def test_trained_weights_give_the_same_scores_at_inference(tmp_path):
    toxic = ["you idiot", "stupid idiot", "shut up idiot", "idiot loser", "dumb idiot", "you loser"] * 5
    clean = ["nice day", "thank you", "good morning", "see you soon", "nice work", "lovely day"] * 5
    rows = [T.Row(t, 1, "a" if i % 2 else "b") for i, t in enumerate(toxic)]
    rows += [T.Row(t, 0, "c" if i % 2 else "d") for i, t in enumerate(clean)]
    task = T.Task("tiny", rows, max_fpr=0.2, fpr_groups=("c", "d"), alpha=1e-4)
    spec = FeatureSpec(bits=12)
    texts, owner = T.expand(rows, segment_train=True)
    x = T.to_csr(texts, spec)
    everything = np.ones(len(rows), dtype=bool)
    fit = T.train(x, rows, owner, everything, task)
    final = {"coef": fit.coef, "bias": fit.bias, "calibration": [1.0, 0.0], "threshold": 0.5}
    T.write_model("tiny", final, task, spec, {"lines": []}, tmp_path)
    model = load_model("tiny", str(tmp_path))
    expected = T.row_logits(x, owner, len(rows), fit)
    # float16 storage costs a little precision, nothing more.
    assert np.allclose(model.raw_logits([r.text for r in rows]), expected, atol=2e-2)
    assert model.probabilities(["idiot"])[0] > 0.5 > model.probabilities(["good day"])[0]


def test_embedding_head_written_by_the_script_loads_and_is_checked(tmp_path):
    from pytest_llmops.safety.embedding_head import load_head

    coef = np.linspace(-1, 1, 384)
    header = {
        "format": "pytest-llmops-embedding-head/1",
        "name": "tiny_head",
        "dimension": 384,
        "bias": -0.5,
        "calibration": [1.2, 0.1],
        "threshold": 0.7,
    }
    T._write_head("tiny_head", coef, header, tmp_path / "models")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny_head.json", "tiny_head.npz"]
    head = load_head("tiny_head", str(tmp_path / "models"))
    assert np.allclose(head.weights, coef, atol=1e-6) and head.threshold == 0.7 and head.calibration == (1.2, 0.1)
    (tmp_path / "models" / "tiny_head.npz").write_bytes(b"not the trained weights")
    with pytest.raises(ValueError, match="sha256 differs"):
        load_head("tiny_head", str(tmp_path / "models") + "/")  # another cache key, so it is read again


def test_unseen_threshold_meets_the_budget_and_a_source_never_sets_its_own():
    rows = [T.Row("x", 0, "chat")] * 100 + [T.Row("x", 0, "roleplay")] * 100 + [T.Row("x", 1, "attacks")] * 50
    probs = np.concatenate([np.linspace(0, 0.6, 100), np.linspace(0, 0.95, 100), np.full(50, 0.97)])
    task = T.Task("t", rows, max_fpr=0.02, fpr_groups=("chat", "roleplay"))
    t = T.unseen_threshold(probs, rows, task)
    assert (probs[100:200] >= t).mean() <= 0.02 and (probs[:100] >= t).mean() <= 0.02
    assert t < 0.97  # the attacks are still flagged
    # Held out, the role-play source is judged at a threshold set by the others alone.
    own = T.unseen_threshold(probs, rows, task, exclude="roleplay")
    assert own < t and (probs[:100] >= own).mean() <= 0.02
    # Never below min_threshold (0.5: more likely ordinary than not), never above 0.99.
    assert T.unseen_threshold(np.zeros(250), rows, task) == task.min_threshold
    assert T.unseen_threshold(np.ones(250), rows, task) == 0.99


def test_learners_rank_the_rows_they_were_not_trained_on():
    toxic = ["you idiot", "stupid idiot", "shut up idiot", "idiot loser", "dumb idiot", "you loser"] * 5
    clean = ["nice day", "thank you", "good morning", "see you soon", "nice work", "lovely day"] * 5
    rows = [T.Row(t, 1, "a" if i % 2 else "b") for i, t in enumerate(toxic)]
    rows += [T.Row(t, 0, "c" if i % 2 else "d") for i, t in enumerate(clean)]
    task = T.Task("tiny", rows, max_fpr=0.2, fpr_groups=("c", "d"), alpha=1e-4)
    labels = np.array([r.label for r in rows])
    train_on = np.array([r.group in ("a", "c") for r in rows])
    for fit in (T.ngram_learner(task, FeatureSpec(bits=12)), T.floor_learner(task)):
        fitted = fit(train_on)
        assert T.auroc(fitted.logits[~train_on], labels[~train_on]) > 0.9


def test_rows_outside_the_competence_are_counted_not_scored():
    rows = [T.Row("What is the capital of Australia?", 0, "q"), T.Row("Qual é a capital da Austrália e do Brasil?", 0, "q")]
    inside, beyond = T.split_competence(rows, "injection")
    assert [r.text for r in inside] == [rows[0].text] and [r.text for r in beyond] == [rows[1].text]
    task = T.Task("t", inside, max_fpr=0.02, fpr_groups=("q",), outside=beyond)
    ev = T.Evaluation(probs=np.array([0.1]), thresholds={"q": 0.5})
    _, record = T.heldout_report(task, ev)
    assert record["q"]["coverage"] == 0.5 and record["q"]["rows"] == 2 and record["q"]["fpr"] == 0.0


@pytest.mark.parametrize("name", ["toxicity", "injection"])
def test_the_shipped_card_shows_the_numbers_of_the_shipped_header(name):
    import json

    from pytest_llmops.safety.model import MODELS_DIR

    header = json.loads((MODELS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    card = (MODELS_DIR / f"{name}.md").read_text(encoding="utf-8")
    assert T.comparison_markdown(header["heldout"]) in card
    assert f"Default threshold: {header['threshold']:.3f}, chosen for a stated false-alarm rate" in card
    assert header["competence"]["languages"] == ["en"] and "## Competence" in card
    assert load_model(name).threshold == header["threshold"]


@pytest.mark.parametrize("name", ["toxicity", "injection"])
def test_the_shipped_head_card_shows_the_numbers_of_its_header(name):
    import json

    from pytest_llmops.safety.embedding_head import load_head
    from pytest_llmops.safety.model import MODELS_DIR

    header = json.loads((MODELS_DIR / f"{name}_minilm.json").read_text(encoding="utf-8"))
    card = (MODELS_DIR / f"{name}_minilm.md").read_text(encoding="utf-8")
    for record in header["heldout"].values():
        assert T.comparison_markdown({"model": record, "floor": header["floor"]}) in card
    head = load_head(f"{name}_minilm")
    assert head.threshold == header["threshold"] and head.ensemble_threshold == header["ensemble_threshold"]
    assert f"{header['threshold']:.3f}" in card
