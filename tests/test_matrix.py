"""The prompt x model x temperature x few-shot matrix, end to end.

Each test runs a small suite inside pytest (``pytester``) against the local
OpenAI-compatible test server, whose replies are scripted per cell: the
server reads the request's system prompt, temperature and case, and answers
right for the first ``k`` cases of that cell, so each cell's quality is known
in advance and the winner, the tie and the significant win can be checked.
"""

from __future__ import annotations

import json
import re

import numpy  # noqa: F401
import pytest
import scipy.stats  # noqa: F401 - imported once here: pytester's in-process runs drop the modules they import

from pytest_llmops.cli import main as llmops

pytest_plugins = ["pytester"]

PLAIN = '''version = "1"
max_tokens = 16
template = "Q: {{ question }}"
[[examples]]
user = "Q: example one"
assistant = "right"
[[examples]]
user = "Q: example two"
assistant = "right"
'''
STEPS = '''version = "2"
max_tokens = 16
temperature = 1.0
system = "Think step by step."
template = "Q: {{ question }}"
[[examples]]
user = "Q: example one"
assistant = "right"
'''


def suite(cases: int, marker: str, repeat: str = "") -> str:
    return f'''
import pytest

CASES = [f"c{{i}}" for i in range({cases})]

@pytest.mark.llm_matrix({marker})
{repeat}
@pytest.mark.parametrize("question", CASES)
async def test_answer(question, prompt, llm):
    answer = await llm.complete(prompt(question=question))
    assert answer == "right"
'''


def script_quality(server, right: dict[tuple[str, float], int]) -> None:
    """Cell (prompt, temperature) answers the first ``right[...]`` cases right, the others wrong."""

    def reply(body: dict) -> str:
        messages = body["messages"]
        kind = "qa_steps" if messages[0]["role"] == "system" else "qa_plain"
        case = int(re.search(r"Q: c(\d+)", messages[-1]["content"]).group(1))
        return "right" if case < right[(kind, float(body["temperature"]))] else "wrong"

    server.script(None, reply)


@pytest.fixture
def project(pytester, server, monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makefile(".toml", **{"prompts/qa_plain": PLAIN, "prompts/qa_steps": STEPS})
    return pytester


def run(pytester, server, *extra: str, model: str = "openai/test-model"):
    return pytester.runpytest(f"--llmops-model={model}", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider",
                              "--llmops-record-mode=off", *extra)


def results(pytester) -> dict:
    return json.loads((pytester.path / ".llmops" / "results.json").read_text())


def matrix(pytester, name: str = "qa") -> dict:
    return next(m for m in results(pytester)["matrices"] if m["name"] == name)


def test_each_case_runs_in_every_cell_with_the_cells_prompt_temperature_and_shots(project, server):
    project.makepyfile(test_answer=suite(2, 'prompt=["qa_plain", "qa_steps@2"], temperature=[0, 0.7], shots=[0, 1], name="qa"'))
    result = run(project, server, "-v")

    result.assert_outcomes(failed=16)  # the default replies are never "right"
    result.stdout.fnmatch_lines(["*test_answer[[]qa_plain-t0-0shot-c0[]]*", "*test_answer[[]qa_steps@2-t0.7-1shot-c1[]]*"])
    sent = [r.body for r in server.received if r.path.endswith("/chat/completions")]
    assert len(sent) == 16
    # The cell's temperature beats the template's own (qa_steps says 1.0); shots keep that many example pairs.
    seen = {(b["messages"][0]["role"] == "system", b["temperature"], len(b["messages"])) for b in sent}
    assert seen == {(False, 0, 1), (False, 0.7, 1), (False, 0, 3), (False, 0.7, 3),
                    (True, 0, 2), (True, 0.7, 2), (True, 0, 4), (True, 0.7, 4)}
    case = next(c for c in results(project)["cases"] if c["nodeid"].endswith("[qa_steps@2-t0.7-1shot-c1]"))
    assert case["matrix"] == {"matrix": "qa", "cell": "qa_steps@2-t0.7-1shot", "case": "test_answer.py::test_answer[c1]",
                              "model": None, "prompt": "qa_steps@2", "temperature": 0.7, "shots": 1}
    assert case["prompts"][0]["version"] == "2"


def test_the_model_axis_gives_each_cell_its_model(project, server):
    project.makepyfile(test_answer=suite(1, 'model=["openai/small", "openai/large"], prompt=["qa_plain"], name="models"'))
    run(project, server)
    assert sorted(r.body["model"] for r in server.received) == ["large", "small"]
    assert {c["matrix"]["cell"] for c in results(project)["cases"]} == {"openai/small-qa_plain", "openai/large-qa_plain"}


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('temperture=[0, 1]', "*unknown matrix axis 'temperture'; the axes are model, prompt, temperature, shots*"),
        ('temperature=[]', "*the 'temperature' axis is empty*"),
        ('temperature=[0, 5]', "*temperature values are numbers from 0 to 2, got 5*"),
        ('prompt=["qa_missing"]', "*cell qa_missing: no prompt template named 'qa_missing'*available: qa_plain, qa_steps*"),
        ('prompt=["qa_steps@7"]', "*pins version '7', but *qa_steps.toml is version '2'*"),
        ('prompt=["qa_steps"], shots=[2]', "*shots=2, but *qa_steps.toml has 1 [[][[]examples[]][]]*"),
        ('name="q,a", temperature=[0]', "*a matrix name is a non-empty string without [[] []] = or a comma, got 'q,a'"),
    ],
)
def test_a_bad_matrix_is_a_usage_error_before_any_call(project, server, marker, message):
    project.makepyfile(test_answer=suite(2, marker))
    result = run(project, server)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert server.requests == 0


def test_the_best_cell_is_the_highest_lower_bound_and_a_small_gap_stays_tied(project, server):
    script_quality(server, {("qa_plain", 0.0): 8, ("qa_plain", 0.7): 10, ("qa_steps", 0.0): 30, ("qa_steps", 0.7): 25})
    project.makepyfile(test_answer=suite(30, 'prompt=["qa_plain", "qa_steps"], temperature=[0, 0.7], name="qa"'))
    result = run(project, server)

    result.stdout.fnmatch_lines([
        "matrix qa: 4 cells",
        "*qa_steps-t0 (best)*1.000 [[]0.886, 1.000[]]*30*",
        "*best: qa_steps-t0; tied within noise with qa_steps-t0.7 (p=0.0625, 5 vs 0 discordant of 30 paired cases)",
    ])
    summary = matrix(project)
    assert summary["best"] == "qa_steps-t0" and summary["runner_up"] == "qa_steps-t0.7"
    # 5 discordant pairs all one way: p = 2 / 2**5 = 0.0625, not below 0.05, so not yet significant.
    assert summary["verdict"] == "tied within noise"
    assert summary["p_value"] == pytest.approx(0.0625)


def test_a_clear_gap_is_significantly_better(project, server):
    script_quality(server, {("qa_plain", 0.0): 5, ("qa_steps", 0.0): 30})
    project.makepyfile(test_answer=suite(30, 'prompt=["qa_plain", "qa_steps"], temperature=[0], name="qa"'))
    result = run(project, server, "--llmops-markdown=summary.md", "--llmops-html=report.html")
    result.stdout.fnmatch_lines(["*best: qa_steps-t0; significantly better than qa_plain-t0 (p=5.96e-08, "
                                 "25 vs 0 discordant of 30 paired cases)"])
    summary = matrix(project)
    assert summary["verdict"] == "significantly better"
    assert summary["p_value"] == pytest.approx(2 / 2**25)
    best = next(c for c in summary["cells"] if c["cell"] == "qa_steps-t0")
    assert best["pass_rate"]["value"] == 1.0 and best["pareto"]
    markdown = (project.path / "summary.md").read_text()
    assert "## Matrix `qa`" in markdown and "significantly better than qa\\_plain-t0" in markdown
    html = (project.path / "report.html").read_text()
    # The Pareto picture: quality against latency (the test model has no price), the front filled in green.
    chart = html[html.index('<svg class="chart pareto"'):]
    chart = chart[:chart.index("</svg>")]
    assert "pass rate against latency p50" in chart
    assert chart.count('class="front-dot"') + chart.count('class="dominated-dot"') == 2
    assert re.search(r'class="front-dot"[^>]*><title>qa_steps-t0: pass rate 1.000', chart)


def test_two_cells_within_noise_are_tied(project, server):
    script_quality(server, {("qa_plain", 0.0): 18, ("qa_steps", 0.0): 20})
    project.makepyfile(test_answer=suite(30, 'prompt=["qa_plain", "qa_steps"], temperature=[0], name="qa"'))
    result = run(project, server)
    result.stdout.fnmatch_lines(["*best: qa_steps-t0; tied within noise with qa_plain-t0 (p=0.5, "
                                 "2 vs 0 discordant of 30 paired cases)"])
    assert matrix(project)["verdict"] == "tied within noise"


def test_gates_over_cells_judge_the_best_cell_or_a_slice(project, server):
    script_quality(server, {("qa_plain", 0.0): 5, ("qa_plain", 0.7): 5, ("qa_steps", 0.0): 30, ("qa_steps", 0.7): 12})
    project.makepyfile(test_answer=suite(30, 'prompt=["qa_plain", "qa_steps"], temperature=[0, 0.7], name="qa"'))
    result = run(project, server, "--llmops-gate=[matrix=qa] best.pass_rate.lower>=0.85")
    # The failing cases of the worse cells are left to the matrix's pass-rate gate.
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*PASS*[[]matrix=qa[]] best.pass_rate.lower>=0.85*best cell qa_steps-t0 of 4*"])

    result = run(project, server, "--llmops-gate=[matrix=qa, prompt=qa_steps, temperature=0.7] pass_rate>=0.5")
    assert result.ret == 6
    gate = results(project)["gates"][0]
    assert gate["verdict"] == "fail" and gate["value"] == pytest.approx(12 / 30) and gate["n"] == 30


def test_best_is_written_to_a_file_a_suite_runs_on(project, server, capsys):
    script_quality(server, {("qa_plain", 0.0): 5, ("qa_plain", 0.7): 5, ("qa_steps", 0.0): 30, ("qa_steps", 0.7): 12})
    project.makepyfile(test_answer=suite(30, 'name="qa"'))
    project.makeconftest('llmops_matrix = {"prompt": ["qa_plain", "qa_steps"], "temperature": [0, 0.7]}')
    run(project, server)
    file = project.path / ".llmops" / "results.json"

    assert llmops(["matrix", "show", str(file)]) == 0
    shown = capsys.readouterr().out
    assert "matrix qa: 4 cells" in shown and "best: qa_steps-t0; significantly better than qa_steps-t0.7" in shown
    assert llmops(["matrix", "best", str(file), "--write", str(project.path / "best.toml")]) == 0
    assert 'prompt = ["qa_steps"]\ntemperature = [0.0]' in (project.path / "best.toml").read_text()

    project.makeconftest('llmops_matrix = "best.toml"')
    server.reset_counters()
    result = run(project, server, "-q")
    result.assert_outcomes(passed=30)
    assert server.requests == 30
    assert {c["matrix"]["cell"] for c in results(project)["cases"]} == {"qa_steps-t0"}


def test_a_dry_run_counts_the_calls_each_cell_will_make_and_sends_none(project, server):
    project.makepyfile(test_answer=suite(4, 'prompt=["qa_plain", "qa_steps"], temperature=[0, 0.7], name="qa"',
                             repeat="@pytest.mark.llm_eval(repeat=3, min_pass_rate=0.5)"))
    dry = run(project, server, "--llmops-dry-run", model="openai/gpt-4o-mini")
    assert server.requests == 0
    assert dry.ret == 0
    dry.assert_outcomes(skipped=16)
    dry.stdout.fnmatch_lines([
        "*llmops dry run*",
        "dry run: no call was sent. 48 calls planned*",
        "*qa / qa_plain-t0 * 12 * 12 * 0 * $0.0*",
        "*total * 48 * 48 * 0 * $0.0*",
    ])
    assert not (project.path / ".llmops" / "results.json").exists()

    real = run(project, server, model="openai/gpt-4o-mini")
    assert server.requests == 48
    calls = [call for case in results(project)["cases"] for call in case["calls"]]
    assert len(calls) == 48 and all(call["cost_usd"] is not None for call in calls)


def test_a_dry_run_keeps_an_unknown_price_unknown(project, server):
    project.makepyfile(test_answer=suite(2, 'model=["openai/gpt-4o-mini", "openai/not-a-priced-model"], prompt=["qa_plain"], name="qa"'))
    project.makepyfile(test_plain='''
async def test_plain(llm):
    await llm.complete("hello")
''')
    dry = run(project, server, "--llmops-dry-run", model="openai/gpt-4o-mini")
    dry.stdout.fnmatch_lines(["*qa / openai/gpt-4o-mini-qa_plain * 2 * 2 * 0 * $0.0*",
                              "*qa / openai/not-a-priced-model-qa_plain * 2 * 2 * 0 * unknown (no price for openai/not-a-priced-model)",
                              "*(no matrix) * 1 * 1 * 0 * unknown (no max_tokens, so the answer's length is unknown)",
                              "*total * 5 * 5 * 0 * unknown"])
    assert server.requests == 0


def test_a_dry_run_still_reports_a_broken_suite(project, server):
    project.makepyfile(test_answer=suite(1, 'temperature=[0], name="qa"'))  # prompt() needs a prompt axis
    dry = run(project, server, "--llmops-dry-run")
    dry.assert_outcomes(errors=1)
    dry.stdout.fnmatch_lines(["*PromptError: matrix cell t0 has no prompt axis*"])


def test_early_stopping_saves_repetitions_of_decided_cells(project, server):
    script_quality(server, {("qa_plain", 0.0): 0, ("qa_steps", 0.0): 10})
    project.makepyfile(test_answer=suite(10, 'prompt=["qa_plain", "qa_steps"], temperature=[0], name="qa", early_stop=True',
                             repeat="@pytest.mark.llm_eval(repeat=5, min_pass_rate=0.5)"))
    result = run(project, server, "--llmops-gate=[matrix=qa] best.pass_rate>=0.9")
    assert result.ret == 0
    planned = 2 * 10 * 5
    summary = matrix(project)
    saved = sum(cell["repetitions_saved"] for cell in summary["cells"])
    assert saved > 0 and server.requests == planned - saved
    result.stdout.fnmatch_lines([f"*early stopping saved {saved} repetitions: *"])
    assert summary["best"] == "qa_steps-t0"
    steps = next(c for c in summary["cells"] if c["cell"] == "qa_steps-t0")
    assert steps["pass_at_k"] == 1.0 and steps["pass_hat_k"] == 1.0 and steps["repeat_k"] == 5


def test_without_early_stopping_every_repetition_runs(project, server):
    script_quality(server, {("qa_plain", 0.0): 0, ("qa_steps", 0.0): 10})
    project.makepyfile(test_answer=suite(10, 'prompt=["qa_plain", "qa_steps"], temperature=[0], name="qa"',
                             repeat="@pytest.mark.llm_eval(repeat=5, min_pass_rate=0.5)"))
    run(project, server)
    assert server.requests == 100
    assert all(cell["repetitions_saved"] == 0 for cell in matrix(project)["cells"])


def test_a_dry_run_refuses_xdist_workers_whose_plans_it_could_not_see(project, server):
    project.makepyfile(test_answer=suite(1, 'prompt=["qa_plain"], name="qa"'))
    result = run(project, server, "--llmops-dry-run", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmops-dry-run counts the calls in one process: drop -n*"])


def test_early_stopping_works_for_sync_tests_too(project, server):
    script_quality(server, {("qa_plain", 0.0): 0, ("qa_steps", 0.0): 10})
    project.makepyfile(test_answer=f'''
import pytest

@pytest.mark.llm_matrix(prompt=["qa_plain", "qa_steps"], temperature=[0], name="qa", early_stop=True)
@pytest.mark.llm_eval(repeat=5, min_pass_rate=0.5)
@pytest.mark.parametrize("question", [f"c{{i}}" for i in range(10)])
def test_answer(question, prompt, llm):
    assert llm.complete_sync(prompt(question=question)) == "right"
''')
    run(project, server)
    saved = sum(cell["repetitions_saved"] for cell in matrix(project)["cells"])
    assert saved > 0 and server.requests == 100 - saved


def test_axes_can_come_from_the_ini_file(project, server):
    project.makeini("[pytest]\nllmops_matrix =\n    prompt = qa_plain\n    temperature = 0, 0.7\n")
    project.makepyfile(test_answer=suite(1, 'shots=[2]'))
    run(project, server)
    assert sorted(c["matrix"]["cell"] for c in results(project)["cases"]) == ["qa_plain-t0-2shot", "qa_plain-t0.7-2shot"]
    assert {c["matrix"]["matrix"] for c in results(project)["cases"]} == {"test_answer"}


def test_matrix_commands_say_when_a_file_has_no_matrix(project, server, capsys):
    project.makepyfile(test_plain='''
def test_plain(llm):
    llm.complete_sync("hello")
''')
    run(project, server)
    assert llmops(["matrix", "show", str(project.path / ".llmops" / "results.json")]) == 2
    assert "has no matrix (no case ran in an llm_matrix cell)" in capsys.readouterr().err


def test_a_matrix_runs_under_xdist_and_the_controller_summarizes_it(project, server):
    script_quality(server, {("qa_plain", 0.0): 5, ("qa_steps", 0.0): 30})
    project.makepyfile(test_answer=suite(30, 'prompt=["qa_plain", "qa_steps"], temperature=[0], name="qa"'))
    result = run(project, server, "-n", "2")
    result.stdout.fnmatch_lines(["*best: qa_steps-t0; significantly better than qa_plain-t0*"])
    assert server.requests == 60
    assert matrix(project)["best"] == "qa_steps-t0"
