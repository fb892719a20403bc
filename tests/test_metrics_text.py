"""Reference-based text metrics against known-good values published by their libraries.

The expected numbers come from rouge-score's tests (several from manual runs
of the Perl ROUGE-1.5.5), sacrebleu's tests and NLTK's documented METEOR
example, never from our own output.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest

from pytest_llmops.metrics import bleu, chrf, corpus_score, meteor, rouge, rouge_scores, ter
from pytest_llmops.verdict import Verdict

# --- ROUGE (rouge-score's rouge_scorer_test.py) ------------------------------------------------

ROUGE_CASES = [
    # rouge_type, reference, prediction, precision, recall, F
    ("rouge1", "testing one two", "testing", 1.0, 1 / 3, 1 / 2),
    ("rouge2", "testing one two", "testing one", 1.0, 1 / 2, 2 / 3),
    ("rougeL", "testing one two", "testing one", 1.0, 2 / 3, 4 / 5),
    ("rougeL", "testing one two", "testing two", 1.0, 2 / 3, 4 / 5),
    # Lin (2004), section 3.2: union LCS over the candidate's sentences.
    ("rougeLsum", "w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", 0.4, 0.8, 0.5333),
]


@pytest.mark.parametrize(("rouge_type", "reference", "prediction", "p", "r", "f"), ROUGE_CASES)
def test_rouge_matches_rouge_score_reference_values(rouge_type, reference, prediction, p, r, f):
    score = rouge(prediction, reference, rouge_type=rouge_type, lsum_split="newline")
    assert score.details["precision"] == pytest.approx(p, abs=1e-4)
    assert score.details["recall"] == pytest.approx(r, abs=1e-4)
    assert score.value == pytest.approx(f, abs=1e-4)
    assert score.signature.startswith(f"metric:{rouge_type}|measure:fmeasure|stem:no")


def test_rouge_measure_picks_the_value():
    recall = rouge("testing", "testing one two", rouge_type="rouge1", measure="recall", threshold=0.5)
    assert recall.name == "rouge1_recall"
    assert recall.value == pytest.approx(1 / 3)
    assert recall.verdict is Verdict.FAIL


def test_stemming_is_rouge_scores_porter_option():
    # rouge-score stems words longer than three letters: "running" -> "run".
    assert rouge("running", "run", rouge_type="rouge1").value == 0.0
    stemmed = rouge("running", "run", rouge_type="rouge1", use_stemmer=True)
    assert stemmed.value == 1.0
    assert "stem:yes" in stemmed.signature


def test_several_references_score_against_the_best_one():
    score = rouge("the cat sat", ["a dog barked", "the cat sat down"], rouge_type="rouge1")
    assert score.details["reference_index"] == 1
    assert score.value == pytest.approx(2 * 1.0 * 0.75 / 1.75)
    assert "best of 2 references: #1" in score.reason


def test_lsum_splits_sentences_offline_with_punkt():
    reference = "Dr. Smith went home. He was tired."
    # The same sentences in the other order: Lsum (union LCS per sentence) gives
    # full marks only if both texts are split into sentences, and not after "Dr.".
    prediction = "He was tired. Dr. Smith went home."
    split = rouge(prediction, reference, rouge_type="rougeLsum")
    unsplit = rouge(prediction, reference, rouge_type="rougeLsum", lsum_split="newline")
    assert split.value == pytest.approx(1.0)
    assert unsplit.value == pytest.approx(rouge(prediction, reference, rouge_type="rougeL").value)
    assert unsplit.value < 0.7
    assert "split:punkt-english" in split.signature


def test_punkt_splitter_keeps_abbreviations():
    from pytest_llmops.metrics._nltk_data import sentence_splitter

    assert sentence_splitter("english").tokenize("Dr. Smith went home. He was tired.") == [
        "Dr. Smith went home.",
        "He was tired.",
    ]


def test_rouge_scores_computes_several_variants_in_one_pass():
    scores = rouge_scores("testing one", "testing one two", thresholds={"rouge2": 0.9})
    assert set(scores) == {"rouge1", "rouge2", "rougeL"}
    assert scores["rouge1"].value == pytest.approx(4 / 5)
    assert scores["rouge2"].verdict is Verdict.FAIL


def test_rouge_rejects_bad_input_with_the_fix():
    with pytest.raises(ValueError, match="'rougeL' or 'rougeLsum'"):
        rouge("a", "b", rouge_type="rouge-l")
    with pytest.raises(TypeError, match="model returned no text"):
        rouge(None, "b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one reference"):
        rouge("a", [])


def test_blank_reference_is_unmeasured_not_zero():
    score = rouge("some answer", "   ")
    assert score.verdict is Verdict.UNMEASURED
    assert score.value is None
    assert "fix the test data" in score.reason


# --- BLEU, chrF, TER (sacrebleu's test_sentence_bleu.py, test_chrf.py, test_ter.py, test_bleu.py) ----

REF = "producţia de zahăr brut se exprimă în zahăr alb;"
SYS = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"

SENTENCE_BLEU_CASES = [
    ({}, 8.493),
    ({"smooth_method": "floor", "smooth_value": 0.5}, 10.10),
    ({"smooth_method": "add-k", "smooth_value": 2}, 21.389),
    ({"tokenize": "none"}, 7.347),
    ({"tokenize": "char"}, 40.8759),
    ({"tokenize": "char", "lowercase": True}, 42.0267),
]


@pytest.mark.parametrize(("options", "expected"), SENTENCE_BLEU_CASES)
def test_sentence_bleu_matches_sacrebleu_reference_values(options, expected):
    assert bleu(SYS, [REF], **options).value == pytest.approx(expected, abs=1e-3)


def test_bleu_signature_is_sacrebleus():
    score = bleu(SYS, REF, threshold=20)
    assert score.signature == (
        f"metric:bleu|level:sentence|nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:{version('sacrebleu')}"
    )
    assert score.verdict is Verdict.FAIL
    assert score.reason.startswith("BLEU 8.49: n-gram precisions ")


@pytest.mark.parametrize(
    ("hypothesis", "reference", "expected"),
    [
        (
            "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
            "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.",
            39.14078509,
        ),
        (
            "Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
            "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.",
            31.22557079,
        ),
    ],
)
def test_sentence_chrf_matches_sacrebleu_reference_values(hypothesis, reference, expected):
    assert chrf(hypothesis, reference, eps_smoothing=True).value == pytest.approx(expected, abs=1e-4)


def test_ter_is_lower_is_better_and_counts_a_shift_as_one_edit():
    score = ter("d e f g h a b c", "a b c d e f g h", threshold=10)
    assert score.value == pytest.approx(100 / 8, abs=1e-3)
    assert not score.higher_is_better
    assert score.verdict is Verdict.FAIL
    assert ter("a b c", "a b c", threshold=10).verdict is Verdict.PASS


HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS = [
    ["The dog bit the man.", "The dog had bit the man."],
    ["It was not unexpected.", "No one was surprised."],
    ["The man bit him first.", "The man had bitten the dog."],
]


@pytest.mark.parametrize(
    ("options", "expected"), [({}, 48.530827), ({"tokenize": "none"}, 49.1919566), ({"tokenize": "intl"}, 43.91623493)]
)
def test_corpus_bleu_matches_sacrebleus_readme_example(options, expected):
    score = corpus_score("bleu", HYPS, REFS, **options)
    assert score.value == pytest.approx(expected, abs=1e-6)
    assert "nrefs:2" in score.signature and "level:corpus" in score.signature


def test_downloading_tokenizers_are_refused():
    with pytest.raises(ValueError, match="downloads a SentencePiece model"):
        bleu("a", "a", tokenize="flores200")
    with pytest.raises(TypeError, match="unknown option"):
        chrf("a", "a", n_gram=3)


# --- METEOR (NLTK's documented example) ------------------------------------------------------------

HYPOTHESIS1 = "It is a guide to action which ensures that the military always obeys the commands of the party"
REFERENCES = [
    "It is a guide to action that ensures that the military will forever heed Party commands",
    "It is the guiding principle which guarantees the military forces always being under the command of the Party",
    "It is the practical guide for the army always to heed the directions of the party",
]


def test_meteor_matches_nltks_documented_example():
    assert round(meteor(HYPOTHESIS1, REFERENCES).value, 4) == 0.6944
    assert round(meteor(HYPOTHESIS1, REFERENCES[0]).value, 4) == 0.6944
    assert meteor("non matching hypothesis", "this is a cat").value == 0.0


def test_meteor_uses_wordnet_synonyms():
    # "sofa" and "couch" share a WordNet 3.0 synset. All four words match in one
    # chunk: METEOR = Fmean * (1 - 0.5 * (chunks / matches) ** 3) = 1 - 0.5 / 64.
    score = meteor("the sofa is red", "the couch is red", threshold=0.9)
    assert score.value == pytest.approx(1 - 0.5 * (1 / 4) ** 3)
    assert score.verdict is Verdict.PASS
    assert "wordnet:3.0" in score.signature
