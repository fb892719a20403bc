"""``llmops redteam generate``: a fixed attack set, the same for the same seed, readable by load_cases."""

from __future__ import annotations

import base64
import json

import pytest

from pytest_llmops import load_cases
from pytest_llmops.cli import main


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "task.txt"
    path.write_text("Summarise the attached document in two sentences.\n")
    return path


def test_the_same_seed_writes_the_same_cases_and_each_strategy_is_covered(tmp_path, task, capsys):
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    base = ["redteam", "generate", "--task", str(task), "--n", "9", "--strategies", "perturb,inject,jailbreak"]
    assert main([*base, "--seed", "1", "--out", str(first)]) == 0
    assert "wrote 9 cases (3 perturbation, 3 injection, 3 jailbreak)" in capsys.readouterr().out
    assert main([*base, "--seed", "1", "--out", str(second)]) == 0
    assert main([*base, "--seed", "2", "--out", str(other)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()

    cases = load_cases(first)
    assert [str(case) for case in cases] == [f"{kind}-{i:03d}" for i, kind in
                                             enumerate(["perturbation"] * 3 + ["injection"] * 3 + ["jailbreak"] * 3)]
    for case in cases:
        if case.kind == "perturbation":
            assert case.original == "Summarise the attached document in two sentences." and case.edits
        elif case.kind == "injection":
            assert "CANARY-7F3A" in case.payload and case.messages[-1]["content"]
            if case.encoding == "base64":
                assert base64.b64decode(case.encoded).decode() == case.payload
        else:
            assert case.strategy.startswith("jailbreak:") and case.input


def test_bad_input_names_the_option_and_the_fix(tmp_path, task, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert main(["redteam", "generate", "--task", str(empty), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert f"--task {empty} is empty" in capsys.readouterr().err
    assert main(["redteam", "generate", "--task", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "cannot read --task" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["redteam", "generate", "--task", str(task), "--strategies", "perturb,fuzz", "--out", "x.jsonl"])
    assert exit_info.value.code == 2
    assert "unknown strategies ['fuzz']; use a comma-separated list of perturb, inject, jailbreak" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
