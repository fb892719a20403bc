"""`llmops score --window`: per-window figures in the one summary; `llmops gate` on that summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmops.cli import main as llmops
from pytest_llmops.results.stats import wilson_interval

DAY = 1_764_547_200  # 2025-12-01T00:00:00Z
CHECKS_TOML = '[[check]]\nname = "pii"\n\n[[check]]\nname = "injection"\n'
CLEAN = "The battery lasts two weeks."
PII = "Write to jane.doe@gmail.com and she will call you back."


def two_days(folder: Path, checks: str = CHECKS_TOML) -> list[str]:
    """48 hourly records: on day one every fourth answer leaks an address (18/24 pass pii), day two none does."""
    records = [{"id": f"r{i}", "ts": DAY + 3600 * i, "output": PII if i < 24 and i % 4 == 1 else CLEAN}
               for i in range(48)]
    (folder / "logs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "checks.toml").write_text(checks)
    return ["score", str(folder / "logs.jsonl"), "--checks", str(folder / "checks.toml"),
            "--out", str(folder / "scored.jsonl")]


def test_one_summary_holds_per_day_counts_pass_rates_with_wilson_intervals_and_means(tmp_path, capsys):
    assert llmops([*two_days(tmp_path), "--time-field", "ts", "--window", "1d"]) == 0
    assert "2 windows of 1d in the summary" in capsys.readouterr().out
    summary = json.loads((tmp_path / "scored.summary.json").read_text())
    assert summary["checks"]["pii"]["passed"] == 42
    found = summary["windows"]
    assert (found["window"], found["by"], found["no_time"]) == ("1d", "time", 0)
    first, second = found["windows"]
    # UTC days, labelled as `llmops drift` labels its windows.
    assert first["label"] == "2025-12-01T00:00:00+00:00 to 2025-12-02T00:00:00+00:00"
    assert second["start"] == "2025-12-02T00:00:00+00:00" and first["records"] == second["records"] == 24
    pii = first["checks"]["pii"]
    assert (pii["passed"], pii["failed"], pii["pass_rate"]) == (18, 6, 0.75)
    assert (pii["pass_rate_low"], pii["pass_rate_high"]) == pytest.approx(wilson_interval(18, 24))
    assert second["checks"]["pii"]["pass_rate"] == 1.0
    # The mean of the check's values over the window (the count of PII hits, 1 per leaking answer).
    assert first["checks"]["pii"]["mean"] > second["checks"]["pii"]["mean"] == 0.0
    # The scored records keep their time, so a later --resume sums the windows up again whole.
    assert json.loads((tmp_path / "scored.jsonl").read_text().splitlines()[0])["time"] == DAY


def test_windows_of_n_records_and_windows_survive_resume(tmp_path, capsys):
    base = two_days(tmp_path)
    assert llmops([*base, "--time-field", "ts", "--until", str(DAY + 3600 * 30)]) == 0
    assert llmops([*base, "--time-field", "ts", "--window", "6h", "--resume"]) == 0
    windows = json.loads((tmp_path / "scored.summary.json").read_text())["windows"]["windows"]
    assert len(windows) == 8 and sum(w["records"] for w in windows) == 48
    assert llmops([*base[:-1], str(tmp_path / "n.jsonl"), "--window", "12"]) == 0
    windows = json.loads((tmp_path / "n.summary.json").read_text())["windows"]
    assert [w["label"] for w in windows["windows"]] == ["records 1-12", "records 13-24", "records 25-36",
                                                       "records 37-48"]
    assert [w["checks"]["pii"]["failed"] for w in windows["windows"]] == [3, 3, 0, 0]


@pytest.mark.parametrize(("argv", "message"), [
    (["--window", "1d"], "--window 1d groups records by time: give --time-field"),
    (["--time-field", "ts", "--window", "1 fortnight"], "--window 1 fortnight: '1 fortnight' is not a duration"),
    (["--window", "0"], "--window 0: a window holds at least 1 record"),
    (["--gate", "pii.p95<=1"], "bad gate 'pii.p95<=1': a score summary gates a check's figures"),
    (["--gate", "pji.pass_rate>=0.9"], "gate 'pji.pass_rate>=0.9' names no check of"),
    (["--gate", "pii.pass_rate>=0.9", "--each-window"], "--each-window needs --window"),
])
def test_bad_windows_and_gates_are_usage_errors_before_any_scoring(tmp_path, capsys, argv, message):
    assert llmops([*two_days(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "scored.jsonl").exists()


def test_gates_in_the_checks_file_decide_the_score_command_and_llmops_gate_reads_the_summary(tmp_path, capsys):
    checks = 'gates = ["pii.pass_rate.lower>=0.6", "injection.pass_rate>=0.99"]\n' + CHECKS_TOML
    assert llmops([*two_days(tmp_path, checks), "--time-field", "ts", "--window", "1d"]) == 0
    out = capsys.readouterr().out
    assert "PASS       pii.pass_rate.lower>=0.6  = 0.7" in out and "(42/48 passed; Wilson 95%" in out
    summary_path = str(tmp_path / "scored.summary.json")

    # The stored gates, re-decided without scoring again; then other gates, same syntax as results files.
    assert llmops(["gate", summary_path]) == 0
    assert "PASS       injection.pass_rate>=0.99  = 1" in capsys.readouterr().out
    assert llmops(["gate", summary_path, "--gate", "pii.pass_rate>=0.95"]) == 1
    assert "FAIL       pii.pass_rate>=0.95  = 0.875" in capsys.readouterr().out
    assert llmops(["gate", summary_path, "--gate", "pii.pass_rate>=0.8", "--gate", "pii.count>=48"]) == 0
    capsys.readouterr()
    # Per window: the first day (18/24) misses what the whole log meets.
    assert llmops(["gate", summary_path, "--gate", "pii.pass_rate>=0.8", "--each-window"]) == 1
    out = capsys.readouterr().out
    assert "PASS       pii.pass_rate>=0.8  = 0.875" in out
    assert "FAIL       [window=2025-12-01T00:00:00+00:00 to 2025-12-02T00:00:00+00:00] pii.pass_rate>=0.8  = 0.75" in out
    assert "PASS       [window=2025-12-02T00:00:00+00:00 to 2025-12-03T00:00:00+00:00] pii.pass_rate>=0.8  = 1" in out
    # A check the summary does not have is unmeasured, which fails like a failed gate.
    assert llmops(["gate", summary_path, "--gate", "toxicity.mean<=0.5"]) == 1
    assert "UNMEASURED toxicity.mean<=0.5  = unmeasured  (no check named 'toxicity' in the summary" in (
        capsys.readouterr().out)


def test_a_failing_gate_fails_the_score_command_and_bad_gates_are_usage_errors(tmp_path, capsys):
    base = two_days(tmp_path)
    assert llmops([*base, "--gate", "pii.pass_rate.lower>=0.9"]) == 1
    assert "FAIL       pii.pass_rate.lower>=0.9" in capsys.readouterr().out
    summary = json.loads((tmp_path / "scored.summary.json").read_text())
    assert summary["gate_results"][0]["verdict"] == "fail"  # kept in the summary, not only printed
    summary_path = str(tmp_path / "scored.summary.json")
    for bad, message in (("pii.pass_rate>=1.5", "a rate is between 0 and 1"),
                         ("latency.p95<=2s", "a score summary gates a check's figures"),
                         ("[suite=a] pii.mean>=0", "with no [scope]"),
                         ("pii.pass_rate.median>=0.5", "bad gate")):
        assert llmops(["gate", summary_path, "--gate", bad]) == 2, bad
        assert message in capsys.readouterr().err
    assert llmops(["gate", summary_path, "--gate", "pii.mean>=0", "--each-window"]) == 2
    assert "has no windows; score with --window" in capsys.readouterr().err
    assert llmops(["gate", summary_path, "--compare", "main"]) == 2
    assert "--compare works on results files" in capsys.readouterr().err


def test_score_pass_rate_bounds_gate_results_files_too():
    from pytest_llmops.gates.evaluate import evaluate_gates
    from pytest_llmops.gates.parse import parse_gates
    from pytest_llmops.results.models import CaseResult, ScoreResult

    cases = [CaseResult(nodeid=f"t.py::test_{i}", state="passed",
                        scores=[ScoreResult(name="pii", value=float(i % 4 == 1), verdict="fail" if i % 4 == 1 else "pass")])
             for i in range(24)]
    lower, upper = evaluate_gates(parse_gates(["pii.pass_rate.lower>=0.5", "pii.pass_rate.upper<=0.8"]), cases)
    assert (lower.value, upper.value) == pytest.approx(wilson_interval(18, 24))
    assert (lower.verdict, upper.verdict) == ("pass", "fail")


def test_a_parquet_output_keeps_the_time_so_resumed_windows_are_whole(tmp_path):
    pytest.importorskip("pyarrow")
    base = [*two_days(tmp_path)[:-1], str(tmp_path / "scored.parquet"), "--time-field", "ts"]
    assert llmops([*base, "--until", str(DAY + 3600 * 30)]) == 0
    assert llmops([*base, "--window", "1d", "--resume"]) == 0
    summary = json.loads((tmp_path / "scored.summary.json").read_text())
    assert summary["already_scored"] == 30 and summary["windows"]["no_time"] == 0
    assert [w["records"] for w in summary["windows"]["windows"]] == [24, 24]
