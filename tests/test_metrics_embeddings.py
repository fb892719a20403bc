"""Model-based metrics: the offline MiniLM embedder, cosine similarity, BERTScore, batching.

Each model loads once per test session (about a second each on one thread).
"""

from __future__ import annotations

import math
import threading
import time

import pytest

from pytest_llmops.metrics import (
    bertscore,
    bertscore_many,
    embedding_batch_sizes,
    prefetch_embeddings,
    semantic_similarity,
    semantic_similarity_many,
)
from pytest_llmops.metrics._batching import GroupBatcher
from pytest_llmops.verdict import Verdict

# The sentence-transformers documentation's example sentences.
EATING = "A man is eating food."
BREAD = "A man is eating a piece of bread."
HORSE = "A man is riding a horse."


# --- the group-commit batcher ----------------------------------------------------------------------


def test_callers_arriving_while_a_batch_runs_share_the_next_one():
    release = threading.Event()
    seen: list[list[int]] = []

    def square_all(items):
        seen.append(list(items))
        if len(seen) == 1:
            release.wait(timeout=10)  # hold the first batch until the others queued
        return [x * x for x in items]

    batcher = GroupBatcher(square_all)
    results: dict[int, int] = {}

    def call(x: int) -> None:
        results[x] = batcher.submit(x)

    first = threading.Thread(target=call, args=(1,))
    first.start()
    while not seen:
        time.sleep(0.001)
    others = [threading.Thread(target=call, args=(x,)) for x in (2, 3, 4, 5)]
    for thread in others:
        thread.start()
    while batcher.pending() < 4:
        time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(timeout=10)

    assert results == {1: 1, 2: 4, 3: 9, 4: 16, 5: 25}
    assert batcher.batch_sizes == [1, 4]
    assert sorted(seen[1]) == [2, 3, 4, 5]


def test_a_lone_caller_runs_at_once_and_errors_reach_every_caller():
    def fail(items):
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        GroupBatcher(fail).submit(1)
    assert GroupBatcher(lambda items: list(items)).submit("x") == "x"


# --- cosine similarity with any embedder ----------------------------------------------------------


class LetterCounts:
    """A tiny deterministic embedder: how often each of a-z occurs."""

    model = "letter-counts"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_sync(self, texts):
        self.calls.append(list(texts))
        return [[t.count(chr(c)) for c in range(ord("a"), ord("z") + 1)] for t in texts]


def test_cosine_similarity_with_a_custom_embedder():
    embedder = LetterCounts()
    assert semantic_similarity("ab", "ba", embedder=embedder).value == pytest.approx(1.0)
    assert semantic_similarity("a", "b", embedder=embedder).value == pytest.approx(0.0)
    score = semantic_similarity("aab", ["zz", "ab"], embedder=embedder, threshold=0.99)
    assert score.value == pytest.approx(3 / math.sqrt(10))
    assert score.details["reference_index"] == 1
    assert score.verdict is Verdict.FAIL
    assert "embedder:letter-counts" in score.signature


def test_texts_are_embedded_once_and_many_pairs_in_one_call():
    embedder = LetterCounts()
    scores = semantic_similarity_many(["abc", "abd", "xyz"], ["abc", ["abc", "xyz"], "abc"], embedder=embedder)
    assert [s.value for s in scores] == pytest.approx([1.0, 2 / 3, 0.0])
    assert scores[1].details["similarities"] == pytest.approx([2 / 3, 0.0])
    assert len(embedder.calls) == 1 and sorted(embedder.calls[0]) == ["abc", "abd", "xyz"]
    # Later per-case calls on known texts are cache hits: no model call.
    semantic_similarity("abd", "xyz", embedder=embedder)
    assert len(embedder.calls) == 1
    assert prefetch_embeddings(["abc", "new text"], embedder=embedder) == 1
    assert embedder.calls[-1] == ["new text"]


def test_a_zero_vector_is_unmeasured():
    score = semantic_similarity("123", "abc", embedder=LetterCounts())
    assert score.verdict is Verdict.UNMEASURED
    assert "zero vector" in score.reason


def test_async_embedders_are_refused_with_the_fix():
    class AsyncOnly:
        async def embed(self, texts):
            return []

    with pytest.raises(TypeError, match="synchronous"):
        semantic_similarity("a", "b", embedder=AsyncOnly())


# --- the offline MiniLM ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    from pytest_llmops.models.minilm import get_embedder

    return get_embedder()


def test_minilm_returns_unit_float32_rows_in_input_order(minilm):
    import numpy as np

    vectors = minilm.embed([EATING, BREAD * 40, ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batching and length sorting do not change a text's vector.
    assert np.allclose(minilm.embed([EATING])[0], vectors[0], atol=1e-5)


def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence(minilm):
    close = semantic_similarity(EATING, BREAD)
    far = semantic_similarity(EATING, HORSE)
    assert close.value > far.value + 0.2
    assert close.signature.startswith("metric:cosine|embedder:all-MiniLM-L6-v2|pool:mean")


def test_concurrent_cases_share_minilm_calls(minilm):
    before = len(embedding_batch_sizes())
    threads = [threading.Thread(target=semantic_similarity, args=(f"question {i}", f"answer {i}")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sizes = embedding_batch_sizes()[before:]
    assert sum(sizes) == 8
    assert len(sizes) < 8  # at least two cases shared a model call


# --- BERTScore -----------------------------------------------------------------------------------------


def test_identical_text_has_bertscore_one():
    score = bertscore(EATING, EATING)
    assert score.value == pytest.approx(1.0, abs=1e-5)
    assert score.details["precision"] == pytest.approx(1.0, abs=1e-5)


# bert-score's own baseline reader warns about a read-only pandas array; not ours.
@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_bertscore_equals_the_library_called_directly():
    import bert_score

    from pytest_llmops.metrics._bertscore import BASELINE_FILE, baseline
    from pytest_llmops.models.minilm import model_path

    cands, refs = [BREAD, HORSE], [EATING, [EATING, "Someone rides a horse."]]
    ours = bertscore_many(cands, refs, measure="f1")
    ours_rescaled = bertscore_many(cands, refs, rescale=True)

    from importlib import resources

    baseline_path = resources.files("pytest_llmops.metrics") / "data" / BASELINE_FILE
    direct = bert_score.BERTScorer(
        model_type=str(model_path()),
        num_layers=6,
        lang="en",
        rescale_with_baseline=True,
        baseline_path=str(baseline_path),
    )
    _, _, f_rescaled = direct.score(cands, [[EATING], [EATING, "Someone rides a horse."]])
    assert [s.value for s in ours_rescaled] == pytest.approx(f_rescaled.tolist(), abs=1e-5)
    # Raw = rescaled * (1 - b) + b, with b the baseline bert-score just read.
    b = baseline(6)[2]
    assert [s.value for s in ours] == pytest.approx([f * (1 - b) + b for f in f_rescaled.tolist()], abs=1e-5)
    assert ours[1].details["raw"]["f1"] == ours[1].value


def test_bertscore_per_case_calls_reuse_batched_results():
    from pytest_llmops.metrics import bertscore_batch_sizes

    bertscore_many([HORSE], ["A person on a horse."])
    before = list(bertscore_batch_sizes())
    score = bertscore(HORSE, "A person on a horse.", measure="recall", threshold=0.99)
    assert bertscore_batch_sizes() == before  # served from the cache
    assert score.name == "bertscore_recall"
    assert score.verdict is Verdict.FAIL


def test_rescaled_unrelated_text_scores_near_zero():
    score = bertscore("The stock market fell sharply on Monday.", "My cat likes to sleep in the sun.", rescale=True)
    assert -0.25 < score.value < 0.25
    assert "rescaled:llmops-minilm-v1" in score.signature


def test_bertscore_option_errors():
    with pytest.raises(ValueError, match="layers 0 to 6"):
        bertscore("a", "b", num_layers=12)
    with pytest.raises(ValueError, match="measure='f'"):
        bertscore("a", "b", measure="f")  # type: ignore[arg-type]


def test_blank_texts_never_reach_the_model():
    empty = bertscore("", EATING)
    assert empty.value == 0.0 and "empty candidate" in empty.reason
    assert bertscore(EATING, ["", EATING]).value == pytest.approx(1.0, abs=1e-5)
    assert bertscore(EATING, " ").verdict is Verdict.UNMEASURED


def test_a_custom_embedders_cache_goes_away_with_it():
    import gc
    import weakref

    embedder = LetterCounts()
    semantic_similarity("ab", "ba", embedder=embedder)
    gone = weakref.ref(embedder)
    del embedder
    gc.collect()
    assert gone() is None
