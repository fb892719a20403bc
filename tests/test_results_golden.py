"""The results file of a small fixed run, pinned whole: what a run records may not change unnoticed.

A run of a few eval cases (async ones, run concurrently and serially, a sync one, a failing
one, one with scores and metadata, a traced step, a fixture error, a skip, a
plain test) against the project's test server writes ``results.json``; the
parts that vary from run to run (times, ids, ports, paths, package versions)
are replaced by placeholders and the rest must equal ``golden/results_small.json``.

After a change meant to alter the file, regenerate it and review the diff::

    LLMOPS_UPDATE_GOLDEN=1 pytest tests/test_results_golden.py
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

GOLDEN = Path(__file__).parent / "golden" / "results_small.json"

SUITE = """
import pytest
from pytest_llmops import traced
from pytest_llmops.assertions import assert_contains, assert_exact


@traced(kind="tool")
def lookup(city):
    return {"city": city, "temp": 21}


@pytest.fixture
def broken():
    raise KeyError("no such fixture value")


@pytest.mark.llm_eval
@pytest.mark.parametrize("case", range(4))
async def test_async_case(case, llm):
    answer = await llm.complete(f"golden case {case}")
    assert answer.startswith("Reply")


@pytest.mark.llm_eval
async def test_async_fails(llm):
    answer = await llm.complete("golden failing")
    assert answer == "something else"


@pytest.mark.llm_eval
async def test_async_scored(llm, llmops_case):
    answer = await llm.complete([{"role": "system", "content": "be brief"}, {"role": "user", "content": "scored"}],
                                temperature=0.2)
    lookup("Paris")
    llmops_case.metadata["tag"] = "golden"
    assert_contains(answer, "Reply")
    assert_exact(answer.split(":")[0], answer.split(":")[0])


@pytest.mark.llm_eval
async def test_async_fixture_error(llm, broken):
    await llm.complete("never sent")


@pytest.mark.llm_eval
async def test_async_skipped(llm):
    pytest.skip("not today")


@pytest.mark.llm_eval
def test_sync_case(llm):
    assert "sync" in llm.complete_sync("golden sync")


@pytest.mark.llm_known_failure("adds the pear trees")
@pytest.mark.llm_eval
def test_known_failure(llm):
    assert llm.complete_sync("known") == "17"


def test_plain():
    assert 1 + 1 == 2
"""

#: Keys whose values are times (epoch seconds, durations) or hash the server's random port (``cache_key``):
#: only their presence and type are pinned.
_VARYING = frozenset({
    "started_at", "finished_at", "start", "end", "duration_s", "latency_s", "ttft_s", "elapsed_s", "recorded_at",
    "llmops.latency_s", "llmops.ttft_s", "backoff_s", "cache_key",
    "latency_p50_s", "latency_p95_s", "ttft_p50_s", "ttft_p95_s",
})
#: Random ids: each becomes ``<id N>`` by order of first appearance, so the links of the span trees stay pinned.
_IDS = frozenset({"trace_id", "span_id", "parent_id"})
#: Figures computed from the times above.
_TIMING_BLOCKS = frozenset({"latency"})


class Normaliser:
    """Replaces what varies from run to run; ``ids`` numbers the random ids by first appearance."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any, key: str | None = None) -> Any:
        if key in _VARYING:
            return None if value is None else f"<{type(value).__name__}>"
        if key in _TIMING_BLOCKS:
            return _shape(value)
        if key in _IDS and isinstance(value, str):
            return self.ids.setdefault(value, f"<id {len(self.ids) + 1}>")
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            for old, new in self.texts.items():
                value = value.replace(old, new)
        return value


def _shape(value: Any) -> Any:
    """Keys, lengths and types of a block of timing figures, not the figures."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, float):
        return "<float>"
    return value


@pytest.mark.parametrize("concurrency", [4, 1], ids=["concurrent", "serial"])
def test_the_results_file_of_a_small_run_is_unchanged(pytester, server, monkeypatch, api_key, concurrency):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makepyfile(test_golden=SUITE)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--llmops-model=openai/test-model", f"--llmops-api-base={server.url}",
        f"--llmops-concurrency={concurrency}", "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=7, failed=2, errors=1, skipped=1)
    data = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    # The environment (versions, machine, commit) is the run's own; its keys are what is pinned.
    data["environment"] = sorted(data["environment"])
    # Both run loops (the concurrent one and pytest's own) record the same file, but for this setting.
    assert data["settings"].pop("concurrency") == concurrency
    # What CI systems read: each case's verdict and figures as JUnit properties.
    data["junit_properties"] = {
        case.get("name"): [[p.get("name"), p.get("value")] for p in case.iter("property")]
        for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    }
    got = Normaliser({server.url: "<server>", str(pytester.path): "<root>"})(data)
    text = json.dumps(got, indent=1, sort_keys=True) + "\n"
    if os.environ.get("LLMOPS_UPDATE_GOLDEN") and concurrency > 1:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    # Compared line by line: a failure shows the lines that changed.
    assert text.splitlines() == GOLDEN.read_text().splitlines()
