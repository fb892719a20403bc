"""Corpus BLEU/chrF/TER collected case by case, merged across workers, scored once.

Expected values are sacrebleu's own (README example and test_ter.py).
"""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from pytest_llmops.case import CaseRecord, case_scope
from pytest_llmops.metrics import (
    CorpusRegistry,
    collect_corpus_bleu,
    collect_corpus_chrf,
    collect_corpus_ter,
    corpus_registry,
    export_corpus_state,
    finalize_corpus_groups,
    merge_corpus_state,
)
from pytest_llmops.verdict import Verdict

HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS = [
    ["The dog bit the man.", "The dog had bit the man."],
    ["It was not unexpected.", "No one was surprised."],
    ["The man bit him first.", "The man had bitten the dog."],
]


@pytest.fixture(autouse=True)
def empty_process_registry():
    corpus_registry().clear()
    yield
    corpus_registry().clear()


def test_cases_collect_into_a_group_scored_once_at_the_end():
    for i, (hyp, refs) in enumerate(zip(HYPS, REFS)):
        with case_scope(CaseRecord(nodeid=f"test_mt.py::test_translate[{i}]")) as record:
            assert collect_corpus_bleu(hyp, refs, group="readme", min_score=50) is None
            assert record.scores == []  # a collected pair does not gate its case

    [score] = finalize_corpus_groups()
    assert score.name == "corpus_bleu[readme]"
    assert score.value == pytest.approx(48.530827, abs=1e-6)
    assert score.verdict is Verdict.FAIL  # 48.5 < 50
    assert score.details["sentences"] == 3 and score.details["cases"] == 3
    assert score.signature == (
        f"metric:bleu|level:corpus|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{version('sacrebleu')}"
    )
    assert len(corpus_registry()) == 0  # finalize empties the registry


def test_worker_states_merge_to_the_same_score_as_one_process():
    # Two xdist workers each saw part of the group; their plain-dict states
    # travel as JSON and merge at the controller.
    worker_a, worker_b = CorpusRegistry(), CorpusRegistry()
    collect_corpus_bleu(HYPS[0], REFS[0], group="readme", registry=worker_a)
    collect_corpus_bleu(HYPS[2], REFS[2], group="readme", registry=worker_a)
    collect_corpus_bleu(HYPS[1], REFS[1], group="readme", registry=worker_b)
    collect_corpus_ter("d e f g h a b c", "a b c d e f g h", group="shift", max_score=20, registry=worker_b)

    assert len(corpus_registry()) == 0  # workers' pairs stay in their own registries
    assert worker_a.groups() == ["readme"] and worker_b.groups() == ["readme", "shift"]

    for worker in (worker_a, worker_b):
        merge_corpus_state(json.loads(json.dumps(worker.to_dict())))

    bleu, ter = finalize_corpus_groups()
    assert bleu.value == pytest.approx(48.530827, abs=1e-6)
    assert ter.name == "corpus_ter[shift]"
    assert ter.value == pytest.approx(100 / 8, abs=1e-3)
    assert ter.verdict is Verdict.PASS and not ter.higher_is_better


def test_export_state_is_plain_json_data():
    collect_corpus_chrf("a cat", "the cat", group="g", min_score=10.0, word_order=2)
    state = export_corpus_state()
    assert json.loads(json.dumps(state)) == state
    [group] = state["groups"]
    assert group["metric"] == "chrf" and group["options"]["word_order"] == 2
    assert group["pairs"] == [{"hypothesis": "a cat", "references": ["the cat"], "case": None}]


def test_variable_numbers_of_references_are_allowed():
    collect_corpus_bleu(HYPS[0], REFS[0], group="var")
    collect_corpus_bleu(HYPS[1], REFS[1][0], group="var")
    [score] = finalize_corpus_groups()
    assert "nrefs:var" in score.signature
    assert score.verdict is Verdict.PASS  # no threshold: informational


def test_one_group_must_use_one_setting():
    collect_corpus_bleu("a", "a", group="g", min_score=10)
    with pytest.raises(ValueError, match="collected with two different settings"):
        collect_corpus_bleu("b", "b", group="g", min_score=20)
    with pytest.raises(ValueError, match="collected with two different settings"):
        collect_corpus_bleu("b", "b", group="g", min_score=10, tokenize="intl")


def test_merge_refuses_a_state_from_another_version():
    with pytest.raises(ValueError, match="same pytest-llmops version"):
        merge_corpus_state({"version": 99, "groups": []})


def test_a_group_whose_references_are_blank_is_unmeasured():
    collect_corpus_bleu("a", " ", group="blank")
    [score] = finalize_corpus_groups()
    assert score.verdict is Verdict.UNMEASURED
    assert "fix the test data" in score.reason


def test_group_name_is_required():
    with pytest.raises(ValueError, match="group must be a non-empty str"):
        collect_corpus_bleu("a", "a", group="")
