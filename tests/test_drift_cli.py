"""``llmops drift``: save a baseline from a log, check later windows, exit codes a CI job can use."""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys

import pytest

from pytest_llmops.drift.cli import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, add_drift_parser, run_drift_command

ENGLISH = [
    "how do I reset my password",
    "where is my order",
    "cancel my subscription please",
    "change the delivery address",
    "refund for a damaged item",
]
GERMAN = ["wie setze ich mein Passwort zurück", "wo ist meine Bestellung", "bitte mein Abo kündigen"]


def write_log(path, topics, count, *, seed, start=1_717_200_000, extra_lines=()):
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as stream:
        for i in range(count):
            prompt = f"{rng.choice(topics)} {rng.choice(['today', 'now', 'asap', ''])}".strip()
            stream.write(json.dumps({"timestamp": start + 60 * i, "prompt": prompt, "response": "ok"}) + "\n")
        for line in extra_lines:
            stream.write(line + "\n")
    return path


def drift(*argv):
    """Run ``llmops drift ARGV`` in-process; returns (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="llmops")
    add_drift_parser(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    code = run_drift_command(parser.parse_args(["drift", *map(str, argv)]), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def state(tmp_path):
    log = write_log(tmp_path / "last_week.jsonl", ENGLISH, 150, seed=1)
    code, out, _ = drift("save", log, "--name", "support", "--embedder", "hashing", "--state-dir", tmp_path / "state")
    assert code == EXIT_OK, out
    assert "saved baseline 'support': 150 prompt texts" in out
    return tmp_path / "state"


def test_a_window_like_the_baseline_passes(tmp_path, state):
    log = write_log(tmp_path / "today.jsonl", ENGLISH, 80, seed=2)
    code, out, _ = drift("check", log, "--baseline", "support", "--state-dir", state)
    assert code == EXIT_OK, out
    assert "no drift" in out and "[mmd]" in out


def test_a_drifted_window_exits_1_and_writes_reports(tmp_path, state):
    log = write_log(tmp_path / "today.jsonl", ENGLISH + GERMAN * 2, 80, seed=3)
    code, out, _ = drift(
        "check",
        log,
        "--baseline",
        "support",
        "--state-dir",
        state,
        "--method",
        "mmd",
        "--method",
        "centroid",
        "--json",
        tmp_path / "out" / "drift.json",
        "--html",
        tmp_path / "out" / "drift.html",
        "--png",
        tmp_path / "out" / "drift.png",
    )
    assert code == EXIT_DRIFT, out
    assert "DRIFT" in out
    assert "clusters that moved" in out and "passwort" in out.lower()
    result = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert result["drifted"] is True
    assert [r["method"] for r in result["results"]] == ["mmd", "centroid"]
    assert all(r["alpha"] == pytest.approx(0.025) for r in result["results"])  # Bonferroni over two tests
    page = (tmp_path / "out" / "drift.html").read_text()
    assert "data:image/png;base64," in page and "Drift detected" in page
    assert (tmp_path / "out" / "drift.png").read_bytes().startswith(b"\x89PNG")


def test_windows_select_the_records_checked(tmp_path, state):
    # Old English records, then an hour of German: the last hour drifts, the first does not.
    log = write_log(tmp_path / "mixed.jsonl", ENGLISH, 120, seed=8)
    german = write_log(tmp_path / "german.jsonl", GERMAN, 60, seed=5, start=1_717_200_000 + 60 * 120)
    log.write_text(log.read_text() + german.read_text())
    code, out, _ = drift("check", log, "--baseline", "support", "--state-dir", state, "--duration", "1h")
    assert code == EXIT_DRIFT and "60 of 180 records" in out
    code, out, _ = drift(
        "check", log, "--baseline", "support", "--state-dir", state, "--until", "2024-06-01T01:00:00Z", "--last", "50"
    )
    assert code == EXIT_OK and "50 of 180 records" in out


def test_malformed_lines_stop_the_check_unless_allowed(tmp_path, state):
    log = write_log(tmp_path / "today.jsonl", ENGLISH, 60, seed=6, extra_lines=["{oops", '{"prompt": 42}'])
    code, _, err = drift("check", log, "--baseline", "support", "--state-dir", state)
    assert code == EXIT_ERROR
    assert "today.jsonl:61: not valid JSON" in err and "today.jsonl:62: 'prompt' must be a string" in err
    code, out, err = drift("check", log, "--baseline", "support", "--state-dir", state, "--allow-malformed")
    assert code == EXIT_OK
    assert "warning: skipped" in err and "2 malformed line(s) skipped" in out


def test_input_errors_exit_2_with_the_fix(tmp_path, state):
    log = write_log(tmp_path / "today.jsonl", ENGLISH, 30, seed=7)
    code, _, err = drift("check", log, "--baseline", "nope", "--state-dir", state)
    assert code == EXIT_ERROR and "no baseline 'nope'" in err and "Saved baselines: support" in err
    code, _, err = drift("check", log, "--baseline", "support", "--state-dir", state, "--embedder", "hashing:256")
    assert code == EXIT_ERROR and "pass the baseline's embedder (--embedder hashing)" in err
    code, _, err = drift("check", log, "--baseline", "support", "--state-dir", state, "--field", "response")
    assert code == EXIT_ERROR and "holds 'prompt' texts" in err
    code, _, err = drift("check", log, "--baseline", "support", "--state-dir", state, "--last", "1")
    assert code == EXIT_ERROR and "needs at least 2" in err
    code, _, err = drift("check", tmp_path / "missing.jsonl", "--baseline", "support", "--state-dir", state)
    assert code == EXIT_ERROR and "cannot read log" in err


def test_list_and_module_entry_point(state):
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_llmops.drift.cli", "drift", "list", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("support\t150 x 512\t")


def test_a_judge_model_names_the_clusters(tmp_path, state, server, monkeypatch):
    # The judge is a real litellm call to the local OpenAI-compatible test server.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server.script(r"labelling one cluster of texts", "German support requests")
    log = write_log(tmp_path / "today.jsonl", GERMAN, 60, seed=9)
    code, out, _ = drift(
        "check",
        log,
        "--baseline",
        "support",
        "--state-dir",
        state,
        "--clusters",
        "3",
        "--judge",
        "openai/test-model",
        "--judge-api-base",
        server.url,
        "--json",
        tmp_path / "r.json",
    )
    assert code == EXIT_DRIFT, out
    assert "'German support requests'" in out
    clusters = json.loads((tmp_path / "r.json").read_text())["clusters"]
    assert clusters["naming"] == "named by the judge"
    assert server.requests >= 1
