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


def _suite_with_a_server_on_a_random_port(pytester, cache_endpoint: str | None) -> None:
    pytester.makeconftest(
        f"""
        import pytest
        from pytest_llmops.fixtures import model_client
        from pytest_llmops.testing import LLMTestServer

        @pytest.fixture(scope="session")
        def judge_server():
            with LLMTestServer() as server:  # a new random port in every run
                server.script("Rate", "4")
                yield server

        @pytest.fixture
        def judge(request, judge_server):
            return model_client(request, "judge", model="openai/suite-judge", api_base=judge_server.url,
                                cache_endpoint={cache_endpoint!r})
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


def _cache_hits(pytester) -> list[bool]:
    result = pytester.runpytest("-m", "llm_eval", "-p", "no:cacheprovider")
    assert result.ret == 0
    cases = json.loads((pytester.path / ".llmops" / "results.json").read_text())["cases"]
    return [call["cache_hit"] for case in cases for call in case["calls"]]


def test_a_server_named_by_cache_endpoint_replays_its_answers_on_another_port(pytester):
    _suite_with_a_server_on_a_random_port(pytester, "suite-judge:v1")

    assert _cache_hits(pytester) == [False]
    assert _cache_hits(pytester) == [True]


def test_without_cache_endpoint_a_new_port_is_a_new_endpoint(pytester):
    _suite_with_a_server_on_a_random_port(pytester, None)

    assert _cache_hits(pytester) == [False]
    assert _cache_hits(pytester) == [False]


def test_a_new_cache_endpoint_version_asks_again(pytester):
    _suite_with_a_server_on_a_random_port(pytester, "suite-judge:v1")
    assert _cache_hits(pytester) == [False]

    _suite_with_a_server_on_a_random_port(pytester, "suite-judge:v2")
    assert _cache_hits(pytester) == [False]
    assert _cache_hits(pytester) == [True]
