"""Have the default model's answers drifted from the ones shipped with the suite?

The answers of this run to the suite's questions are embedded (offline
MiniLM) and compared with the answers recorded when the suite was calibrated
(``drift/answers.npz``: SmolLM2-135M on llama-cpp-python 0.3.36, greedy) by a
permutation MMD test. The same build gives the same answers (p = 1); another
llama.cpp build rewords a few and stays within noise; a different model,
prompt or sampling setting that changes what the answers talk about or how
they say it shows as drift, with the clusters that moved.

To re-record the baseline after a deliberate change (a new default model, a
new prompt), run this file with ``LLMOPS_UPDATE_BASELINES=1`` and commit
``drift/answers.*``; the test then passes only after writing them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llmops import load_cases
from pytest_llmops.assertions import assert_no_drift

CASES = load_cases(Path(__file__).with_name("cases.jsonl"), required=("question",))
BASELINE = Path(__file__).parent / "drift" / "answers.json"


@pytest.mark.llm_eval
async def test_answers_have_not_drifted_from_the_shipped_baseline(answer_from_retrieval, llm):
    answers = [str((await answer_from_retrieval(case.question))[1]) for case in CASES]

    if os.environ.get("LLMOPS_UPDATE_BASELINES") == "1":
        from pytest_llmops.drift.baseline import save_baseline

        save_baseline(BASELINE.stem, answers, root=BASELINE.parent, overwrite=True,
                      source=f"evalsuites/rag_qa answers of {llm.model}")
        # save_baseline keeps baselines under <root>/baselines; the suite ships them beside this file.
        for suffix in (".npz", ".json"):
            (BASELINE.parent / "baselines" / f"{BASELINE.stem}{suffix}").replace(BASELINE.with_suffix(suffix))
        (BASELINE.parent / "baselines").rmdir()

    assert_no_drift(answers, BASELINE, method="mmd", alpha=0.05)
