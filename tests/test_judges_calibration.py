"""Calibrating a judge on labelled data: agreement figures, the stored report, refusing uncalibrated judges."""

from __future__ import annotations

import json
import re

import pytest

from pytest_llmops.cli import main
from pytest_llmops.judges.calibration import (
    CalibrationError,
    calibrate,
    calibration_key,
    calibration_path,
    load_labelled,
    require_calibrated,
)
from pytest_llmops.verdict import UnmeasuredError

CRITERIA = "The answer is correct."

# Human labels; the scripted judge says pass exactly when the output contains "right".
ITEMS = [
    ("q1", "right answer", "pass"),
    ("q2", "right again", "pass"),
    ("q3", "wrong answer", "fail"),
    ("q4", "wrong again", "fail"),
    ("q5", "right but the human disagreed", "fail"),
    ("q6", "wrong but the human liked it", "pass"),
    ("q7", "right, and flaky", "pass"),
    ("q8", "wrong and plain", "fail"),
]


def write_labels(path, items=ITEMS):
    path.write_text("".join(json.dumps({"input": i, "output": o, "label": lab}) + "\n" for i, o, lab in items))
    return path


def rubric_judge(body):
    """Pass for outputs containing "right"; with seed=1 (the repeat run) it flips on "flaky" items."""
    text = body["messages"][-1]["content"]
    response = re.search(r"<response>\n(.*?)\n</response>", text, re.DOTALL).group(1)
    passed = "right" in response
    if body.get("seed") == 1 and "flaky" in response:
        passed = not passed
    return {
        "reasoning": "checked",
        "score": 5 if passed else 1,
        "verdict": "pass" if passed else "fail",
    }


def expected_kappa(human, judged):
    """Cohen's kappa written out: (observed - chance) / (1 - chance)."""
    n = len(human)
    observed = sum(h == j for h, j in zip(human, judged)) / n
    chance = sum((human.count(label) / n) * (judged.count(label) / n) for label in ("pass", "fail"))
    return (observed - chance) / (1 - chance)


@pytest.fixture
def judge_client(make_client):
    return make_client(model="openai/judge-model", role="judge")


def test_calibration_reports_agreement_and_saves_it(server, judge_client, tmp_path):
    server.script("Score the response from", rubric_judge)
    data = write_labels(tmp_path / "labels.jsonl")
    report = judge_client.runtime.run(
        calibrate(
            judge_client,
            "rubric",
            data,
            criteria=CRITERIA,
            state_dir=tmp_path / "state",
        )
    )
    human = [lab for _, _, lab in ITEMS]
    judged = ["pass" if "right" in o else "fail" for _, o, _ in ITEMS]
    assert report.n_items == 8 and report.n_measured == 8 and report.n_unmeasured == 0
    assert report.accuracy == pytest.approx(6 / 8)
    assert report.kappa == pytest.approx(expected_kappa(human, judged))
    assert report.confusion_matrix == {
        "pass": {"pass": 3, "fail": 1},
        "fail": {"pass": 1, "fail": 3},
    }
    # Every item was asked twice (the repeat with seed=1 is not served from the cache); one flipped.
    assert server.requests_by_path["/v1/chat/completions"] == 16
    assert report.repeat_agreement == pytest.approx(7 / 8)
    assert {d["line"] for d in report.disagreements} == {5, 6}

    saved = json.loads((tmp_path / "state" / "calibration").joinpath(report.path.rsplit("/", 1)[1]).read_text())
    assert saved["key"] == report.key and saved["kappa"] == report.kappa
    assert saved["judge_model"] == "openai/judge-model" and saved["templates"][0]["name"] == "rubric"
    assert report.key == calibration_key(judge_client, "rubric", criteria=CRITERIA)

    assert require_calibrated(
        judge_client,
        "rubric",
        criteria=CRITERIA,
        min_kappa=0.4,
        state_dir=tmp_path / "state",
    )
    with pytest.raises(UnmeasuredError, match=r"not calibrated well enough.*kappa 0\.500 < 0\.8"):
        require_calibrated(
            judge_client,
            "rubric",
            criteria=CRITERIA,
            min_kappa=0.8,
            state_dir=tmp_path / "state",
        )

    # Running the calibration again costs no judge calls: both passes come from the cache.
    judge_client.runtime.run(
        calibrate(
            judge_client,
            "rubric",
            data,
            criteria=CRITERIA,
            state_dir=tmp_path / "state",
        )
    )
    assert server.requests_by_path["/v1/chat/completions"] == 16


def test_missing_calibration_is_refused_with_the_command_to_run(judge_client, tmp_path):
    with pytest.raises(
        UnmeasuredError,
        match=r"no calibration for faithfulness.*llmops calibrate LABELLED\.jsonl "
        r"--judge openai/judge-model --metric faithfulness",
    ):
        require_calibrated(judge_client, "faithfulness", state_dir=tmp_path)


def test_a_changed_template_needs_its_own_calibration(judge_client, tmp_path):
    from pytest_llmops.judges.templates import TEMPLATES_DIR

    custom = tmp_path / "rubric.toml"
    custom.write_text((TEMPLATES_DIR / "rubric" / "rubric.toml").read_text().replace('version = "1"', 'version = "2"'))
    shipped = calibration_key(judge_client, "rubric", criteria=CRITERIA)
    changed = calibration_key(judge_client, "rubric", criteria=CRITERIA, template=custom)
    assert "template:rubric@2#" in changed and shipped != changed
    assert calibration_path(shipped, tmp_path) != calibration_path(changed, tmp_path)


def test_unmeasured_items_are_counted_apart(server, judge_client, tmp_path):
    server.script("Score the response from", "I'm sorry, I cannot grade this.")
    report = judge_client.runtime.run(
        calibrate(
            judge_client,
            "rubric",
            write_labels(tmp_path / "l.jsonl", ITEMS[:2]),
            criteria=CRITERIA,
            repeats=1,
            state_dir=tmp_path,
        )
    )
    assert report.n_measured == 0 and report.n_unmeasured == 2 and report.kappa is None
    assert "refused" in report.unmeasured_reasons[0]
    with pytest.raises(UnmeasuredError, match="kappa n/a"):
        require_calibrated(judge_client, "rubric", criteria=CRITERIA, state_dir=tmp_path)


def test_bad_labelled_file_names_the_line_and_fix(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "q", "output": "a", "label": "pass"}\n{"input": "q", "output": "a", "label": "maybe"}\n')
    with pytest.raises(
        CalibrationError,
        match=r"bad\.jsonl:2: label 'maybe' is not a verdict; use \"pass\" or \"fail\"",
    ):
        load_labelled(bad)
    bad.write_text('{"input": "q", "output": "a", "label": "pass"}\n')
    with pytest.raises(CalibrationError, match=r"bad\.jsonl:1: missing context"):
        load_labelled(bad, metric="faithfulness")
    bad.write_text("not json\n")
    with pytest.raises(CalibrationError, match=r"bad\.jsonl:1: not valid JSON"):
        load_labelled(bad)


def test_llmops_calibrate_command(server, api_key, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    server.script("Score the response from", rubric_judge)
    data = write_labels(tmp_path / "labels.jsonl")
    args = [
        "calibrate",
        str(data),
        "--judge",
        "openai/judge-model",
        "--api-base",
        server.url,
        "--metric",
        "rubric",
        "--criteria",
        CRITERIA,
        "--state-dir",
        str(tmp_path / "state"),
    ]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "accuracy: 0.750  Cohen's kappa: 0.500" in out.out
    assert "repeat agreement: 0.875" in out.out
    assert len(list((tmp_path / "state" / "calibration").glob("*.json"))) == 1
    assert main([*args, "--min-kappa", "0.9"]) == 1
    assert "below --min-kappa 0.9" in capsys.readouterr().err
    assert (
        main(
            [
                "calibrate",
                str(tmp_path / "missing.jsonl"),
                "--judge",
                "openai/x",
                "--metric",
                "rubric",
                "--criteria",
                "c",
                "--state-dir",
                str(tmp_path / "state"),
            ]
        )
        == 2
    )
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_llmops_calibrate_deadline_bounds_each_call_of_a_hung_judge(server, api_key, monkeypatch, tmp_path, capsys):
    import time

    from pytest_llmops.testing import Fault

    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    server.inject(Fault.hang(30), times=None)
    data = write_labels(tmp_path / "labels.jsonl", ITEMS[:2])
    started = time.monotonic()
    code = main(["calibrate", str(data), "--judge", "openai/judge-model", "--api-base", server.url,
                 "--metric", "rubric", "--criteria", CRITERIA, "--repeats", "1", "--deadline", "1",
                 "--concurrency", "2", "--no-cache", "--state-dir", str(tmp_path / "state"), "--json"])
    elapsed = time.monotonic() - started
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    # both items were asked at once and given up after the deadline: unmeasured, not guessed
    assert elapsed < 10
    assert (report["n_items"], report["n_measured"], report["n_unmeasured"]) == (2, 0, 2)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--deadline", "0", "argument --deadline: 0: seconds above 0"),
    ("--deadline", "inf", "argument --deadline: inf: seconds above 0"),
    ("--concurrency", "0", "argument --concurrency: 0: at least 1"),
])
def test_llmops_calibrate_refuses_a_bad_deadline_or_concurrency_naming_the_option(tmp_path, capsys, option, value, message):
    data = write_labels(tmp_path / "labels.jsonl")
    with pytest.raises(SystemExit) as stopped:
        main(["calibrate", str(data), "--judge", "openai/x", option, value])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
