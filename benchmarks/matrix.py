"""A 4 x 3 x 3 matrix (prompt x temperature x shots) over 50 cases against the 300 ms local server.

Starts the project's OpenAI-compatible test server with a fixed latency and a
reply scripted per cell (each cell answers its first k cases right, k set by
the cell's prompt, temperature and shots), writes a suite of 50 cases marked
``llm_matrix`` and runs it twice in a subprocess each:

1. one call per case and cell (36 cells x 50 = 1,800 calls): the pytest
   process's wall time against the ideal (calls x latency / calls in flight);
2. the same with ``llm_eval(repeat=R)`` and ``early_stop=True``, then without
   early stopping: calls sent and calls saved, and whether the best cell is
   the same.

    python benchmarks/matrix.py [--cases 50] [--latency 0.3] [--concurrency 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_llmops.testing import LLMTestServer

PROMPTS = ("qa_a", "qa_b", "qa_c", "qa_d")
TEMPERATURES = (0.0, 0.5, 1.0)
SHOTS = (0, 1, 2)

TEMPLATE = '''version = "1"
max_tokens = 8
system = "Style {name}."
template = "Q: {{{{ question }}}}"
[[examples]]
user = "Q: example one"
assistant = "right"
[[examples]]
user = "Q: example two"
assistant = "right"
'''

SUITE = '''
import pytest

@pytest.mark.llm_matrix(prompt={prompts!r}, temperature={temperatures!r}, shots={shots!r}, name="grid"{early})
{repeat}
@pytest.mark.parametrize("question", [f"c{{i}}" for i in range({cases})])
async def test_answer(question, prompt, llm):
    answer = await llm.complete(prompt(question=question))
    assert answer == "right"
'''


def right_share(prompt: str, temperature: float, shots: int) -> float:
    """The scripted quality of a cell: better prompts, lower temperatures and more shots answer more."""
    return min(1.0, 0.45 + 0.12 * PROMPTS.index(prompt) - 0.1 * temperature + 0.05 * shots)


def reply_for(cases: int):  # type: ignore[no-untyped-def]
    def reply(body: dict) -> str:
        messages = body["messages"]
        prompt = re.search(r"Style (\w+)\.", messages[0]["content"]).group(1)
        shots = (len(messages) - 2) // 2
        case = int(re.search(r"Q: c(\d+)", messages[-1]["content"]).group(1))
        right = round(right_share(prompt, float(body["temperature"]), shots) * cases)
        return "right" if case < right else "wrong"

    return reply


def run(folder: Path, server: LLMTestServer, concurrency: int) -> tuple[float, dict]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-benchmark"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--llmops-model=openai/bench",
         f"--llmops-api-base={server.url}", "--llmops-record-mode=off", f"--llmops-concurrency={concurrency}",
         "--llmops-progress=off", "--llmops-history=off", "-p", "no:randomly"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=1800,
    )
    wall = time.perf_counter() - started
    return wall, json.loads((folder / ".llmops" / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cells = len(PROMPTS) * len(TEMPERATURES) * len(SHOTS)
    with tempfile.TemporaryDirectory() as tmp, LLMTestServer(latency=args.latency) as server:
        folder = Path(tmp)
        (folder / "prompts").mkdir()
        for name in PROMPTS:
            (folder / "prompts" / f"{name}.toml").write_text(TEMPLATE.format(name=name))
        server.script(None, reply_for(args.cases))

        def suite(early: bool, repeat: int) -> None:
            marker = f"@pytest.mark.llm_eval(repeat={repeat}, min_pass_rate=0.5)" if repeat > 1 else ""
            (folder / "test_grid.py").write_text(SUITE.format(
                prompts=list(PROMPTS), temperatures=list(TEMPERATURES), shots=list(SHOTS), cases=args.cases,
                early=", early_stop=True" if early else "", repeat=marker))

        print(f"matrix: {len(PROMPTS)} prompts x {len(TEMPERATURES)} temperatures x {len(SHOTS)} shots = {cells} cells, "
              f"{args.cases} cases, server latency {args.latency * 1000:.0f} ms, {args.concurrency} calls in flight")
        suite(False, 1)
        server.reset_counters()
        wall, result = run(folder, server, args.concurrency)
        calls = server.requests
        ideal = calls * args.latency / args.concurrency
        best = result["matrices"][0]
        print(f"one call per case: {calls} calls, wall {wall:.1f} s (whole pytest process), ideal {ideal:.1f} s, "
              f"wall/ideal {wall / ideal:.2f}; {best['statement']}")
        for early in (True, False):
            suite(early, args.repeat)
            server.reset_counters()
            wall, result = run(folder, server, args.concurrency)
            summary = result["matrices"][0]
            saved = sum(cell["repetitions_saved"] for cell in summary["cells"])
            planned = cells * args.cases * args.repeat
            print(f"repeat={args.repeat}, early_stop={early}: {server.requests} of {planned} calls sent "
                  f"({saved} saved, {saved / planned:.0%}), wall {wall:.1f} s; best {summary['best']}")


if __name__ == "__main__":
    main()
