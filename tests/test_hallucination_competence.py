"""Where the offline detector answers: outside its validated region a check ends unmeasured, naming the alternative."""

from __future__ import annotations

import json
import shutil

import pytest

from pytest_llmops.assertions import assert_grounded
from pytest_llmops.hallucination import detect_hallucination
from pytest_llmops.hallucination.competence import Competence, TextKind
from pytest_llmops.hallucination.model import MODELS_DIR, load_model
from pytest_llmops.verdict import UnmeasuredError

pytest_plugins = ["pytester"]

BRIDGE = (
    "The Kelvane Bridge crosses the river Ost. It is 340 metres long and carries two lanes of traffic. "
    "It was designed by Anna Kovacs and opened in 1962."
)


def test_an_answer_that_copies_its_context_is_judged():
    report = detect_hallucination("The Kelvane Bridge crosses the river Ost.", BRIDGE)
    assert report.measured and report.declined is None
    assert report.kind.novel_bigrams == 0.0
    assert not report.hallucinated


def test_a_reworded_right_answer_is_declined_not_flagged():
    report = detect_hallucination("Anna Kovacs was the engineer behind this crossing.", BRIDGE)
    assert not report.measured
    assert report.kind.novel_bigrams > load_model().competence.max_novel
    assert "abstractive (novel word pairs" in report.declined
    assert "assert_faithful" in report.declined
    with pytest.raises(ValueError, match="the detector declined this answer, so it has no verdict"):
        report.hallucinated
    # The probability and evidence stay, for whoever wants to read them.
    assert 0.0 <= report.probability <= 1.0 and report.sentences


def test_assert_grounded_ends_unmeasured_there_with_the_measure_and_the_alternative():
    with pytest.raises(UnmeasuredError) as ended:
        assert_grounded("Anna Kovacs was the engineer behind this crossing.", BRIDGE)
    message = str(ended.value)
    assert message.startswith("grounded: unmeasured - the short answer is abstractive (novel word pairs 0.")
    assert "validated up to 0.20" in message
    assert "use assert_faithful(answer, context=..., judge=...) with a judge" in message


def test_a_short_answer_that_invents_a_number_is_judged_in_any_wording():
    # Reworded (novel word pairs), but the year is evidence: on HaluEval no right answer carried one.
    with pytest.raises(AssertionError, match="not in the context: 1975"):
        assert_grounded("Traffic first crossed the Ost here in 1975.", BRIDGE)


def test_competence_false_scores_anyway():
    report = detect_hallucination("Anna Kovacs was the engineer behind this crossing.", BRIDGE, competence=False)
    assert report.measured
    assert report.hallucinated  # the confident false alarm the region exists to prevent


def test_text_that_is_not_english_is_declined():
    context = "Die Kelvane-Brücke überquert den Fluss Ost. Sie ist 340 Meter lang und wurde 1962 eröffnet."
    with pytest.raises(UnmeasuredError, match=r"does not read as English \(common English words 0\.0\d"):
        assert_grounded("Die Brücke ist 340 Meter lang.", context)


def test_an_answer_longer_than_any_validated_is_declined():
    competence = load_model().competence
    sentence = "The Kelvane Bridge crosses the river Ost and it is 340 metres long."
    answer = " ".join([sentence] * (competence.max_words // 13 + 1))
    report = detect_hallucination(answer, BRIDGE)
    assert report.kind.words > competence.max_words
    assert f"longer ({report.kind.words} words) than any grounded answer" in report.declined


def test_an_answer_with_more_sentences_than_any_validated_is_declined():
    competence = load_model().competence
    answer = " ".join(["It opened in 1962."] * (competence.max_sentences + 1))
    report = detect_hallucination(answer, BRIDGE)
    assert f"more sentences ({competence.max_sentences + 1})" in report.declined


def test_the_rule_reads_each_dimension():
    region = Competence(short_words=25, max_novel=0.2, max_words=100, max_sentences=4, min_english=0.12)
    extractive = TextKind(words=12, sentences=1, novel_bigrams=0.1, english=0.4)
    assert region.decline(extractive, unsupported_facts=False) is None
    reworded = TextKind(words=12, sentences=1, novel_bigrams=0.5, english=0.4)
    assert "short answer is abstractive" in region.decline(reworded, unsupported_facts=False)
    assert region.decline(reworded, unsupported_facts=True) is None
    summary = TextKind(words=60, sentences=3, novel_bigrams=0.5, english=0.4)
    # The number-or-name exception is for short answers only (LLM summaries reword numbers when right).
    assert "answer is abstractive" in region.decline(summary, unsupported_facts=True)


def _copy_model(tmp_path, edit):
    folder = tmp_path / "model"
    shutil.copytree(MODELS_DIR, folder)
    header = json.loads((folder / "offline.json").read_text())
    edit(header)
    (folder / "offline.json").write_text(json.dumps(header))
    return folder


def test_a_model_without_a_competence_region_fails_to_load_naming_the_file_and_fix(tmp_path):
    folder = _copy_model(tmp_path, lambda h: h.pop("competence"))
    with pytest.raises(ValueError, match=r"offline\.json: missing 'competence'.*rebuild it with scripts/train_hallucination\.py"):
        load_model(str(folder))


def test_a_malformed_competence_region_fails_to_load(tmp_path):
    folder = _copy_model(tmp_path, lambda h: h["competence"].update(max_novel=3.0))
    with pytest.raises(ValueError, match="'competence' has out-of-range values"):
        load_model(str(folder))


def test_a_declined_answer_is_recorded_unmeasured_with_its_kind(pytester):
    assert_grounded("The Kelvane Bridge crosses the river Ost.", BRIDGE)  # warm nltk outside pytester
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_llmops.assertions import assert_grounded

        @pytest.mark.llm_eval
        def test_reworded():
            assert_grounded("Anna Kovacs was the engineer behind this crossing.", {BRIDGE!r})
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*unmeasured*abstractive*assert_faithful*"])
    [case] = json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"]
    [score] = case["scores"]
    assert score["verdict"] == "unmeasured" and score["value"] is None
    assert score["details"]["kind"]["novel_bigrams"] > 0.2
    assert "probability" in score["details"]


def test_a_rewording_sentence_alone_cannot_fail_an_answer_that_otherwise_copies():
    # The whole answer is extractive enough, but the one sentence above the threshold is a framing that
    # rewords: the detector cannot tell it from a right answer in other words, so it does not fail on it.
    answer = (
        "The Kelvane Bridge crosses the river Ost. It is 340 metres long and carries two lanes of traffic. "
        "It was designed by Anna Kovacs and opened in 1962. So the final verdict reads thus."
    )
    report = detect_hallucination(answer, BRIDGE)
    assert report.kind.novel_bigrams <= load_model().competence.max_novel
    assert [s.text for s in report.flagged] == ["So the final verdict reads thus."]
    assert report.declined.startswith("the only sentence(s) above the threshold reword the context")
    assert "assert_faithful" in report.declined


def test_a_copied_sentence_with_an_invented_number_still_fails_its_answer():
    answer = "The Kelvane Bridge crosses the river Ost. It is 410 metres long and carries two lanes of traffic."
    with pytest.raises(AssertionError, match="not in the context: 410"):
        assert_grounded(answer, BRIDGE)
