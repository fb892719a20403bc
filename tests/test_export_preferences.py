"""`llmops export preferences`: DPO/KTO training files from a real run's pairwise judge scores."""

from __future__ import annotations

import json
import re

import pytest

from pytest_llmops.cli import main

EVAL_TESTS = """
import pytest
from pytest_llmops.assertions import assert_preferred

@pytest.mark.llm_eval
async def test_new_answer_wins(judge):
    await assert_preferred("Capital of France?", "Paris.", "Lyon.", judge=judge)

@pytest.mark.llm_eval
async def test_baseline_wins(judge):
    await assert_preferred("Capital of Italy?", "Milan.", "Rome.", judge=judge)

@pytest.mark.llm_eval
async def test_position_biased(judge):
    await assert_preferred("Largest ocean? (biased)", "Pacific.", "Atlantic.", judge=judge)

@pytest.mark.llm_eval
async def test_tied(judge):
    await assert_preferred("Say hello. (tie)", "Hello.", "Hi.", judge=judge)
"""


def script_pairwise_judge(server):
    """Prefers the response naming the right city; always picks the first on "(biased)", a tie on "(tie)"."""

    def reply(body):
        text = body["messages"][-1]["content"]
        prompt = re.search(r"<input>\n(.*?)\n</input>", text, re.DOTALL).group(1)
        a = re.search(r"<response_a>\n(.*?)\n</response_a>", text, re.DOTALL).group(1)
        if "(biased)" in prompt:
            winner = "A"
        elif "(tie)" in prompt:
            winner = "tie"
        else:
            winner = "A" if a in ("Paris.", "Rome.") else "B"
        return {"reasoning": f"picked {winner}", "winner": winner}

    server.script("<response_a>", reply)


@pytest.fixture
def run_args(server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    script_pairwise_judge(server)
    return ["-p", "no:cacheprovider", f"--llmops-judge-api-base={server.url}", "--llmops-judge=openai/judge",
            "--llmops-record-mode=off"]


@pytest.fixture
def results(pytester, run_args):
    """A run whose judge scores keep their texts (review on, no sample: only straddlers go to reviewers)."""
    pytester.makepyfile(EVAL_TESTS)
    pytester.runpytest(*run_args, "--llmops-review-sample=0").assert_outcomes(passed=3, failed=1)
    return pytester.path / ".llmops" / "results.json"


def export(results, fmt, out, capsys):
    code = main(["export", "preferences", str(results), "--format", fmt, "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_format_holds_only_the_pairs_both_orders_agreed_on(results, tmp_path, capsys):
    code, out, _ = export(results, "trl", tmp_path / "trl.jsonl", capsys)
    assert code == 0
    assert "wrote 2 preference pair(s) (trl) to " in out
    assert ": 2 of 4 pairwise score(s), 0 of 0 repeated prompt(s), 0 of 0 reviewed prompt(s)" in out
    assert "dropped 1 pair(s) whose two orders disagreed" in out
    assert "dropped 1 pair(s) called a tie (by the judge in both orders, or rewards within the margin)" in out
    assert sorted(read_jsonl(tmp_path / "trl.jsonl"), key=lambda row: row["prompt"]) == [
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
        {"prompt": "Capital of Italy?", "chosen": "Rome.", "rejected": "Milan."},  # the baseline won
    ]

    assert export(results, "openai-dpo", tmp_path / "dpo.jsonl", capsys)[0] == 0
    france = next(row for row in read_jsonl(tmp_path / "dpo.jsonl")
                  if row["input"]["messages"][0]["content"] == "Capital of France?")
    assert france == {
        "input": {"messages": [{"role": "user", "content": "Capital of France?"}]},
        "preferred_output": [{"role": "assistant", "content": "Paris."}],
        "non_preferred_output": [{"role": "assistant", "content": "Lyon."}],
    }

    assert export(results, "kto", tmp_path / "kto.jsonl", capsys)[0] == 0
    kto = read_jsonl(tmp_path / "kto.jsonl")
    assert {(row["prompt"], row["completion"], row["label"]) for row in kto} == {
        ("Capital of France?", "Paris.", True), ("Capital of France?", "Lyon.", False),
        ("Capital of Italy?", "Rome.", True), ("Capital of Italy?", "Milan.", False),
    }


def test_trl_loads_the_files_and_unpairs_the_trl_file_into_the_kto_rows(results, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets
    from trl.data_utils import is_conversational, maybe_extract_prompt, unpair_preference_dataset

    for fmt in ("trl", "kto"):
        assert export(results, fmt, tmp_path / f"{fmt}.jsonl", capsys)[0] == 0
    cache = str(tmp_path / "hf-cache")
    paired = datasets.load_dataset("json", data_files=str(tmp_path / "trl.jsonl"), split="train", cache_dir=cache)
    unpaired = datasets.load_dataset("json", data_files=str(tmp_path / "kto.jsonl"), split="train", cache_dir=cache)

    assert paired.column_names == ["prompt", "chosen", "rejected"]
    assert not is_conversational(paired[0])
    # An explicit prompt already: TRL leaves the row as it is.
    assert maybe_extract_prompt(paired[0]) == paired[0]
    assert unpaired.features["label"].dtype == "bool"
    as_kto = unpair_preference_dataset(paired)
    assert sorted(as_kto.column_names) == ["completion", "label", "prompt"]
    assert sorted(map(tuple, map(dict.values, as_kto))) == sorted(map(tuple, map(dict.values, unpaired)))


def test_a_run_without_the_judged_texts_says_which_option_keeps_them(pytester, run_args, tmp_path, capsys):
    pytester.makepyfile(EVAL_TESTS)
    pytester.runpytest(*run_args).assert_outcomes(passed=3, failed=1)
    code, out, err = export(pytester.path / ".llmops" / "results.json", "trl", tmp_path / "none.jsonl", capsys)
    assert code == 2
    assert "none of the 4 pairwise score(s), 0 repeated prompt(s) and 0 reviewed prompt(s) gives a pair" in err
    assert "dropped 2 pair(s) without their texts: run with --llmops-review-sample=0" in err
    assert not (tmp_path / "none.jsonl").exists()


def test_a_run_without_pairwise_scores_is_an_error(pytester, run_args, tmp_path, capsys):
    pytester.makepyfile("import pytest\n\n@pytest.mark.llm_eval\ndef test_plain():\n    assert True\n")
    pytester.runpytest(*run_args).assert_outcomes(passed=1)
    code, _, err = export(pytester.path / ".llmops" / "results.json", "kto", tmp_path / "none.jsonl", capsys)
    assert code == 2
    assert "no pairwise judge score and no repeated case scored by a judge, and no review labels" in err


REPEATED_TESTS = """
import pytest
from pytest_llmops.assertions import assert_rubric
from pytest_llmops.case import current_sample

@pytest.mark.llm_eval(repeat=3, min_pass_rate=0.5)
async def test_sampled_answers(judge):
    answer = ["Paris.", "Lyon, I think.", "Paris, France."][current_sample()]
    await assert_rubric(answer, input="Capital of France?", criteria="Names the capital", judge=judge)

@pytest.mark.llm_eval(repeat=2)
async def test_steady_answers(judge):
    await assert_rubric("Rome.", input="Capital of Italy?", criteria="Names the capital", judge=judge)
"""


def script_rubric_judge(server):
    def grade(body):
        response = body["messages"][-1]["content"].split("<response>")[-1]
        score = 5 if "Paris, France" in response else 4 if "Paris" in response or "Rome" in response else 1
        return {"reasoning": f"graded {score}", "score": score, "verdict": "pass" if score >= 3 else "fail"}

    server.script("Evaluation criteria", grade)


def test_repeated_samples_give_their_best_against_their_worst(pytester, server, run_args, tmp_path, capsys):
    script_rubric_judge(server)
    pytester.makepyfile(REPEATED_TESTS)
    pytester.runpytest(*run_args, "--llmops-review-sample=0").assert_outcomes(passed=2)
    code, out, _ = export(pytester.path / ".llmops" / "results.json", "trl", tmp_path / "trl.jsonl", capsys)
    assert code == 0
    assert ": 0 of 0 pairwise score(s), 1 of 2 repeated prompt(s), 0 of 0 reviewed prompt(s)" in out
    assert "dropped 1 repeated prompt(s) whose samples all scored the same" in out
    assert read_jsonl(tmp_path / "trl.jsonl") == [
        {"prompt": "Capital of France?", "chosen": "Paris, France.", "rejected": "Lyon, I think."}
    ]


REVIEWED_TESTS = """
import pytest
from pytest_llmops.assertions import assert_rubric

@pytest.mark.llm_eval
@pytest.mark.parametrize("answer", ["Paris.", "Lyon, I think.", "Marseille."])
async def test_capital(answer, judge):
    await assert_rubric(answer, input="Capital of France?", criteria="Names the capital", judge=judge)
"""


def test_review_labels_pair_an_answer_reviewers_passed_with_one_they_failed(
    pytester, server, run_args, tmp_path, capsys, monkeypatch
):
    script_rubric_judge(server)
    pytester.makepyfile(REVIEWED_TESTS)
    pytester.runpytest(*run_args, "--llmops-review-sample=1").assert_outcomes(passed=1, failed=2)
    results = pytester.path / ".llmops" / "results.json"
    monkeypatch.chdir(pytester.path)
    assert main(["review", "export", str(results), "--format", "jsonl", "-o", str(tmp_path / "tasks.jsonl")]) == 0
    tasks = read_jsonl(tmp_path / "tasks.jsonl")
    # Two reviewers: Paris passes, Lyon fails; on Marseille they split, so it has no majority.
    verdicts = {"Paris.": ("pass", "pass"), "Lyon, I think.": ("fail", "fail"), "Marseille.": ("pass", "fail")}
    lines = [{"item_id": task["item_id"], "reviewer": reviewer, "label": label, "at": "2026-12-03T10:00:00Z"}
             for task in tasks
             for reviewer, label in zip(("ann", "bob"), verdicts[task["judged"]["output"]])]
    (tmp_path / "labels-in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = tmp_path / "labels.jsonl"
    assert main(["review", "import", str(tmp_path / "labels-in.jsonl"), "--results", str(results),
                 "--into", str(store)]) == 0
    capsys.readouterr()

    assert export(results, "trl", tmp_path / "reviewed.jsonl", capsys)[0] == 2, "without --labels: no pair"
    code = main(["export", "preferences", str(results), "--format", "trl", "--out", str(tmp_path / "reviewed.jsonl"),
                 "--labels", str(store)])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 of 1 reviewed prompt(s)" in out
    assert "dropped 1 reviewed item(s) whose reviewers tied" in out
    assert read_jsonl(tmp_path / "reviewed.jsonl") == [
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, I think."}
    ]
