"""The review round trip in real runs: mark cases, export tasks, read labels back, override the judge.

The judge is the local test server, scripted as a rubric judge: an answer that
names Paris scores 5, one that hedges ("I think") scores 3 (right on the
threshold, so it goes to review), any other 1.
"""

from __future__ import annotations

import json

import pytest

from pytest_llmops.cli import main
from pytest_llmops.judges.calibration import load_labelled
from pytest_llmops.results.models import read_results

EVAL_TESTS = """
import pytest
from pytest_llmops.assertions import assert_rubric

ANSWERS = ["Paris is the capital of France."] * 8 + ["Paris, I think."] + ["It is Lyon."]

@pytest.mark.llm_eval
@pytest.mark.parametrize("answer", ANSWERS, ids=[f"a{i}" for i in range(len(ANSWERS))])
async def test_capital(answer, judge):
    await assert_rubric(answer, criteria="Names the capital correctly", input="What is the capital of France?",
                        judge=judge)
"""


def script_rubric_judge(server):
    def grade(body):
        text = body["messages"][-1]["content"]
        response = text.split("<response>")[-1]
        if "I think" in response:
            return {"reasoning": "hedged but right", "score": 3, "verdict": "pass"}
        if "Paris" in response:
            return {"reasoning": "names Paris", "score": 5, "verdict": "pass"}
        return {"reasoning": "wrong city", "score": 1, "verdict": "fail"}

    server.script("Evaluation criteria", grade)


@pytest.fixture
def reviewed_run(pytester, server, monkeypatch, api_key):
    """A run with review on at 20%: returns its results file and the command-line arguments used."""
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    script_rubric_judge(server)
    pytester.makepyfile(EVAL_TESTS)
    args = ["-p", "no:cacheprovider", f"--llmops-judge-api-base={server.url}", "--llmops-judge=openai/judge",
            "--llmops-record-mode=off"]
    result = pytester.runpytest(*args, "--llmops-review-sample=0.2", "--llmops-review-seed=1")
    result.assert_outcomes(passed=9, failed=1)
    return pytester.path / ".llmops" / "results.json", args


def marked(results):
    return {case.nodeid.split("[")[-1].rstrip("]"): case.metadata.get("review") for case in read_results(results).cases}


def test_the_run_marks_a_seeded_sample_and_every_straddling_case(reviewed_run):
    results, _ = reviewed_run
    marks = marked(results)
    # a8 scores 3 against threshold 3: always marked; others only if sampled.
    assert "near threshold: rubric = 3, threshold 3 (margin 0.1 of the range)" in marks["a8"]["reasons"]
    from pytest_llmops.review.select import in_sample

    sampled = {key for key, mark in marks.items() if mark and any(r.startswith("sampled") for r in mark["reasons"])}
    expected = {key for key in marks if in_sample(f"test_the_run_marks_a_seeded_sample_and_every_straddling_case.py"
                                                  f"::test_capital[{key}]", 0.2, 1)}
    assert sampled == expected and sampled
    case = next(c for c in read_results(results).cases if c.nodeid.endswith("[a8]"))
    assert case.metadata["review_plan"] == {"rate": 0.2, "margin": 0.1, "seed": 1}
    assert case.scores[0].details["judged"]["output"] == "Paris, I think."


def test_a_run_without_review_keeps_no_texts(pytester, server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    script_rubric_judge(server)
    pytester.makepyfile(EVAL_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", f"--llmops-judge-api-base={server.url}", "--llmops-judge=openai/j")
    for case in read_results(pytester.path / ".llmops" / "results.json").cases:
        assert "review" not in case.metadata and "judged" not in case.scores[0].details


def test_a_bad_review_rate_is_a_usage_error(pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.llm_eval(review=1.5)
        def test_x(): pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*llm_eval(review=...) is the share of cases sent to human review*1.5*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmops-review-sample=2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmops-review-sample: expected a number between 0 and 1, got '2'*"])


def _export(results, fmt, tmp, *extra):
    out = tmp / f"tasks.{fmt}"
    assert main(["review", "export", str(results), "--format", fmt, "-o", str(out), *extra]) == 0
    return out


def _verdicts(tasks):
    """What each of three reviewers says: ann and bob agree with the judge except on the hedge; cy fails it too."""
    return {t: ("fail" if "I think" in text else "pass") for t, text in tasks.items()}


def test_label_studio_round_trip(reviewed_run, tmp_path, capsys, monkeypatch):
    results, _ = reviewed_run
    monkeypatch.chdir(results.parent.parent)
    exported = json.loads(_export(results, "labelstudio", tmp_path).read_text())
    assert (tmp_path / "tasks.labelstudio.xml").read_text().count("<Choice ") == 2
    assert all("predictions" not in task for task in exported)  # the judge is hidden by default
    texts = {task["data"]["item_id"]: task["data"]["output"] for task in exported}
    verdicts = _verdicts(texts)
    # What Label Studio's JSON export looks like: the tasks with their annotations.
    for number, task in enumerate(exported):
        task["id"] = number
        task["annotations"] = [
            {"completed_by": {"email": who}, "updated_at": "2026-12-01T10:00:00Z", "was_cancelled": False,
             "result": [{"from_name": "verdict", "to_name": "output", "type": "choices",
                         "value": {"choices": [verdicts[task["data"]["item_id"]]]}}]}
            for who in ("ann@x", "bob@x")
        ]
    reviewed = tmp_path / "ls-export.json"
    reviewed.write_text(json.dumps(exported))
    store, calibration = tmp_path / "labels.jsonl", tmp_path / "calibration.jsonl"
    capsys.readouterr()
    assert main(["review", "import", str(reviewed), "--results", str(results), "--into", str(store),
                 "--calibration", str(calibration)]) == 0
    out = capsys.readouterr().out
    n = len(exported)
    assert f"imported {2 * n} labels" in out
    assert f"between reviewers: Cohen's kappa = 1.000 over {n} items (ann@x, bob@x)" in out
    # The judge passed the hedge, both humans failed it: one disagreement out of n.
    assert f"judge vs human, openai/judge / rubric@1: agreement {(n - 1) / n:.3f}" in out
    assert "judge pass / human fail: 1" in out
    items = load_labelled(calibration, metric="rubric")  # what `llmops calibrate` reads
    assert len(items) == n and {i.output: i.label for i in items}["Paris, I think."] == "fail"


def test_argilla_round_trip_with_three_reviewers_and_the_judge_shown(reviewed_run, tmp_path, capsys, monkeypatch):
    results, _ = reviewed_run
    monkeypatch.chdir(results.parent.parent)
    exported = json.loads(_export(results, "argilla", tmp_path, "--show-judge").read_text())
    assert exported["settings"]["questions"][0] == {"name": "verdict", "type": "label_selection",
                                                    "labels": ["pass", "fail"], "required": True}
    records = exported["records"]
    hedge = next(r for r in records if r["fields"]["output"] == "Paris, I think.")
    assert hedge["suggestions"][0]["value"] == "pass" and hedge["suggestions"][0]["agent"] == "openai/judge"
    for record in records:
        record["responses"] = {"verdict": [
            {"user_id": "ann", "value": "pass", "status": "submitted"},
            {"user_id": "bob", "value": "pass", "status": "submitted"},
            {"user_id": "cy", "value": "fail" if record is hedge else "pass", "status": "submitted"},
            {"user_id": "dee", "value": "fail", "status": "draft"},  # not submitted: not a label
        ]}
    reviewed = tmp_path / "argilla-export.json"
    reviewed.write_text(json.dumps(exported))
    capsys.readouterr()
    assert main(["review", "import", str(reviewed), "--results", str(results), "--into", str(tmp_path / "l.jsonl"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["reviewers"]["method"] == "Fleiss' kappa" and report["reviewers"]["reviewers"] == ["ann", "bob", "cy"]
    # Hand check: n items, all 3-0 pass except one 2-1: P = (n-1 + 1/3)/n; p_fail = 1/(3n).
    n = len(records)
    observed = (n - 1 + 1 / 3) / n
    p_fail = 1 / (3 * n)
    expected = 1 - p_fail
    pe = expected**2 + p_fail**2
    assert report["reviewers"]["kappa"] == pytest.approx((observed - pe) / (1 - pe), abs=1e-6)
    assert report["judge_vs_human"][0]["agreement"] == 1.0  # the majority passed the hedge, as the judge did


def test_jsonl_labels_override_the_judge_in_the_next_run(reviewed_run, pytester, tmp_path, capsys, monkeypatch):
    results, args = reviewed_run
    monkeypatch.chdir(results.parent.parent)
    tasks = [json.loads(line) for line in _export(results, "jsonl", tmp_path).read_text().splitlines()]
    assert all("judge" not in task for task in tasks)
    wrong = next(t for t in tasks if t["judged"]["output"] == "Paris, I think.")
    lines = [{"item_id": wrong["item_id"], "reviewer": "ann", "label": "fail", "at": "2026-12-02T09:00:00Z",
              "note": "hedges"}]
    reviewed = tmp_path / "labels-in.jsonl"
    reviewed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = tmp_path / "store.jsonl"
    assert main(["review", "import", str(reviewed), "--results", str(results), "--into", str(store)]) == 0
    capsys.readouterr()

    again = pytester.runpytest(*args, f"--llmops-review-labels={store}")
    again.assert_outcomes(passed=8, failed=2)
    again.stdout.fnmatch_lines(["*human review: fail by ann (2026-12-02T09:00:00Z); the judge said pass*"])
    case = next(c for c in read_results(results).cases if c.nodeid.endswith("[a8]"))
    review = case.scores[0].details["human_review"]
    assert case.state == "failed" and review["override"] is True
    assert review["judge"]["verdict"] == "pass" and review["labels"][0]["reviewer"] == "ann"


def test_import_names_labels_for_unknown_items(reviewed_run, tmp_path, capsys):
    results, _ = reviewed_run
    reviewed = tmp_path / "labels.jsonl"
    reviewed.write_text(json.dumps({"item_id": "feedfeedfeedfeed", "reviewer": "ann", "label": "maybe"}) + "\n")
    assert main(["review", "import", str(reviewed), "--results", str(results), "--into", str(tmp_path / "s")]) == 2
    assert "label 'maybe' is not a verdict" in capsys.readouterr().err
    reviewed.write_text(json.dumps({"item_id": "feedfeedfeedfeed", "reviewer": "ann", "label": "pass"}) + "\n")
    assert main(["review", "import", str(reviewed), "--results", str(results), "--into", str(tmp_path / "s")]) == 2
    assert "1 item(s) not among the review tasks" in capsys.readouterr().err


def test_export_of_a_run_without_review_says_how_to_turn_it_on(pytester, capsys):
    pytester.makepyfile("import pytest\n@pytest.mark.llm_eval\ndef test_x(): pass\n")
    pytester.runpytest("-p", "no:cacheprovider")
    assert main(["review", "export", str(pytester.path / ".llmops" / "results.json")]) == 2
    assert "--llmops-review-sample=0.1" in capsys.readouterr().err
