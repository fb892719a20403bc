"""The drift commands on what `llmops score` reads and writes: the summary's pass rates per window, and
the answers of the scored log per window, each against a baseline."""

from __future__ import annotations

import json
import random
from pathlib import Path

from pytest_llmops.cli import main as llmops

DAY = 1_764_547_200  # 2025-12-01T00:00:00Z
CLEAN = ["The battery lasts two weeks.", "A full charge takes two hours.", "Open Settings, then Account.",
         "Your order ships tomorrow.", "The refund reaches your card in five days."]
PII = "Write to jane.doe@gmail.com and she will call you back."
GERMAN = ["Der Akku hält zwei Wochen.", "Ihre Bestellung wird morgen verschickt.", "Öffnen Sie die Einstellungen."]


def write_log(path: Path, days: list[tuple[list[str], float]], seed: int) -> Path:
    """Hourly-spread records per day: answers drawn from the day's texts, a share of them leaking an address."""
    rng = random.Random(seed)
    lines = []
    for day, (texts, leaking) in enumerate(days):
        for i in range(100):
            output = PII if i < leaking * 100 else f"{rng.choice(texts)} Ticket {rng.randint(1, 999)}."
            lines.append(json.dumps({"id": f"{day}-{i}", "ts": DAY + 86400 * day + 800 * i, "output": output}))
    path.write_text("\n".join(lines) + "\n")
    return path


def score(tmp_path: Path, log: Path, *extra: str) -> Path:
    (tmp_path / "checks.toml").write_text('[[check]]\nname = "pii"\n\n[[check]]\nname = "toxicity"\n')
    out = tmp_path / f"{log.stem}.scored.jsonl"
    assert llmops(["score", str(log), "--checks", str(tmp_path / "checks.toml"), "--out", str(out),
                   "--time-field", "ts", *extra]) == 0
    return out.with_suffix(".summary.json")


def test_pass_rates_of_each_window_against_a_baseline_summary(tmp_path, capsys):
    baseline = score(tmp_path, write_log(tmp_path / "november.jsonl", [(CLEAN, 0.05), (CLEAN, 0.05)], seed=1))
    current = score(tmp_path, write_log(tmp_path / "december.jsonl", [(CLEAN, 0.05), (CLEAN, 0.40)], seed=2),
                    "--window", "1d")
    capsys.readouterr()
    assert llmops(["drift", "scores", str(current), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    # 2 windows x 2 checks: each test at 0.05 / 4.
    assert "4 test(s), 1 drifted, 0 unmeasured (alpha 0.05, Bonferroni)" in out
    assert ("NO DRIFT   [window=2025-12-01T00:00:00+00:00 to 2025-12-02T00:00:00+00:00] pii: pass rate 95/100 = 0.950 "
            "vs baseline 190/200 = 0.950; Fisher p=1 at level 0.0125") in out
    assert "DRIFT      [window=2025-12-02T00:00:00+00:00 to 2025-12-03T00:00:00+00:00] pii: pass rate 60/100 = 0.600" in out
    # The first day alone, or only the toxicity check: nothing moved.
    assert llmops(["drift", "scores", str(current), "--baseline", str(baseline), "--check", "toxicity"]) == 0
    assert "2 test(s), 0 drifted" in capsys.readouterr().out
    whole = score(tmp_path, write_log(tmp_path / "same.jsonl", [(CLEAN, 0.05)], seed=3))
    assert llmops(["drift", "scores", str(whole), "--baseline", str(baseline)]) == 0
    assert "NO DRIFT   [all records] pii: pass rate 95/100" in capsys.readouterr().out


def test_a_check_no_record_measured_is_unmeasured_and_bad_inputs_exit_2(tmp_path, capsys):
    baseline = score(tmp_path, write_log(tmp_path / "november.jsonl", [(CLEAN, 0.05)], seed=1))
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"id": "x", "ts": DAY, "question": "no answer logged"}) + "\n")
    current = score(tmp_path, empty)
    capsys.readouterr()
    assert llmops(["drift", "scores", str(current), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "UNMEASURED [all records] pii: pass rate no measured record vs baseline 95/100" in out
    assert "cannot be said not to drift" in out

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"cases": []}))
    assert llmops(["drift", "scores", str(results), "--baseline", str(baseline)]) == 2
    assert "is not a summary of `llmops score`" in capsys.readouterr().err
    assert llmops(["drift", "scores", str(current), "--baseline", str(baseline), "--check", "leak"]) == 2
    assert "--check leak: not in both summaries (both have: pii, toxicity)" in capsys.readouterr().err


def test_the_answers_of_a_scored_log_drift_per_window_against_a_saved_baseline(tmp_path, capsys):
    state = tmp_path / "state"
    names = ["--response-field", "output", "--time-field", "ts", "--field", "response", "--state-dir", str(state)]
    november = write_log(tmp_path / "november.jsonl", [(CLEAN, 0.0), (CLEAN, 0.0)], seed=1)
    assert llmops(["drift", "save", str(november), "--name", "answers", "--embedder", "hashing", *names]) == 0
    assert "saved baseline 'answers': 200 response texts" in capsys.readouterr().out

    # The same log `llmops score` read: day one answers as before, day two in German.
    december = write_log(tmp_path / "december.jsonl", [(CLEAN, 0.0), (GERMAN, 0.0)], seed=2)
    report = tmp_path / "windows.json"
    code = llmops(["drift", "check", str(december), "--baseline", "answers", "--every", "1d", "--json", str(report),
                   *names])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "per 1d window: 2 windows, each at alpha 0.025" in out
    assert "NO DRIFT   [window=2025-12-01T00:00:00+00:00 to 2025-12-02T00:00:00+00:00] 100 texts" in out
    assert "DRIFT      [window=2025-12-02T00:00:00+00:00 to 2025-12-03T00:00:00+00:00] 100 texts" in out
    # The windows are the ones the score summary of the same log has.
    summary = score(tmp_path, december, "--window", "1d")
    labels = [w["label"] for w in json.loads(summary.read_text())["windows"]["windows"]]
    assert [row["window"] for row in json.loads(report.read_text())["windows"]] == labels
    assert [row["verdict"] for row in json.loads(report.read_text())["windows"]] == ["no drift", "drift"]
    assert llmops(["drift", "check", str(december), "--baseline", "answers", "--every", "daily", *names]) == 2
    assert "--every daily: 'daily' is not a duration" in capsys.readouterr().err
    assert llmops(["drift", "check", str(december), "--baseline", "answers", "--every", "1d", "--html",
                   str(tmp_path / "r.html"), *names]) == 2
    assert "--html describes one window" in capsys.readouterr().err
