"""``model_client``: a suite's conftest points a fixture at a model of its own."""

from __future__ import annotations

import json


def test_a_suite_can_point_its_judge_at_a_server_it_starts(pytester):
    pytester.makeconftest(
        """
        import pytest
        from pytest_llmops.fixtures import model_client
        from pytest_llmops.testing import LLMTestServer

        @pytest.fixture(scope="session")
        def judge_server():
            with LLMTestServer() as server:
                server.script("Rate", "4")
                yield server

        @pytest.fixture
        def judge(request, judge_server):
            return model_client(request, "judge", model="openai/suite-judge", api_base=judge_server.url)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        async def test_rated(judge):
            assert await judge.complete("Rate this answer") == "4"
        """
    )

    result = pytester.runpytest("-m", "llm_eval", "-p", "no:cacheprovider")

    assert result.ret == 0
    calls = json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"][0]["calls"]
    assert [(c["model"], c["role"], c["api_base"].startswith("http://127.0.0.1:")) for c in calls] == [
        ("openai/suite-judge", "judge", True)
    ]
