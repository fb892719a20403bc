"""The shipped evalsuites/prompt_matrix suite, wired as its README section says, without running the model.

A dry run (``--llmops-dry-run``) collects the real suite from its real folder,
builds every cell's request (template, examples, temperature, seed, cache key)
and sends nothing, so this checks the matrix in a few seconds where the cold
run on the embedded model takes half a minute.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pytest_llmops.prompts import PromptLibrary

ROOT = Path(__file__).resolve().parents[1]
CELLS = [f"trivia_v{v}-t{t}-{s}shot" for v in (1, 2) for t in ("0", "0.7") for s in (0, 2)]


def test_the_suite_plans_eight_cells_of_six_distinct_calls(tmp_path):
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "llm_eval", "evalsuites/prompt_matrix",
        "--llmops-dry-run", f"--llmops-cache-path={tmp_path / 'cache.sqlite'}", "--llmops-history=off",
        f"--llmops-results={tmp_path / 'results.json'}", f"--llmops-html={tmp_path / 'report.html'}",
        f"--llmops-markdown={tmp_path / 'summary.md'}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "48 calls planned" in out and "48 skipped" in out
    rows = {m["cell"]: m for m in re.finditer(
        r"trivia / (?P<cell>\S+)\s+(?P<calls>\d+)\s+(?P<send>\d+)\s+(?P<cached>\d+)\s+(?P<tokens>\d+)\s+"
        r"(?P<cost>.+)", out)}
    assert sorted(rows) == sorted(CELLS), out
    # The embedded model is free, as its call records say: the plan prices it at $0, not "unknown".
    assert {r["cost"].strip() for r in rows.values()} == {"$0.000000"}, out
    # Six calls a cell, all to send: no two cells build the same request (the 0.7 cells differ from the greedy ones).
    assert {(r["calls"], r["send"]) for r in rows.values()} == {("6", "6")}
    for version in (1, 2):
        for temperature in ("0", "0.7"):
            zero, two = (int(rows[f"trivia_v{version}-t{temperature}-{s}shot"]["tokens"]) for s in (0, 2))
            assert two > zero, "the 2-shot cells carry their two examples"


def test_every_template_seeds_its_sample_and_caps_the_answer():
    # The seed makes the temperature-0.7 cells draw the same answers on every cold run, whatever the call order.
    library = PromptLibrary(ROOT / "evalsuites" / "prompts")
    for name, version in (("trivia_v1", "1"), ("trivia_v2", "2")):
        template = library.get(name)
        rendered = template.render({"question": "How many legs does a spider have?"})
        assert template.version == version and len(template.examples) == 2
        assert isinstance(rendered.params.get("seed"), int) and rendered.params.get("max_tokens") == 10
        assert "spider" in rendered.messages[-1]["content"]
