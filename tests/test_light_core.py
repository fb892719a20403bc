"""The light core: without litellm installed, OpenAI-compatible bases still work and other models say what to install."""

from __future__ import annotations

import json

import pytest

HIDE_LITELLM = "import sys\nsys.modules['litellm'] = None  # stands in for an install without the [litellm] extra\n"


@pytest.fixture
def no_litellm(pytester):
    pytester.makeconftest(HIDE_LITELLM)
    return pytester


def test_an_openai_compatible_server_needs_no_litellm(no_litellm, server):
    no_litellm.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.llm_eval
        def test_ask(llm):
            assert llm.complete_sync("hello there")
            assert sys.modules["litellm"] is None
        """
    )

    result = no_litellm.runpytest_subprocess(
        "-m", "llm_eval", "-p", "no:cacheprovider", "--llmops-model=openai/test-model", f"--llmops-api-base={server.url}"
    )

    assert result.ret == 0
    call = json.loads((no_litellm.path / ".llmops" / "results.json").read_text())["cases"][0]["calls"][0]
    assert call["error"] is None and call["cost_usd"] is None  # no price table without litellm: unknown, not 0


def test_a_model_that_needs_litellm_is_unmeasured_and_names_the_extra(no_litellm):
    no_litellm.makepyfile(
        """
        import pytest

        @pytest.mark.llm_eval
        def test_ask(llm):
            llm.complete_sync("hello there")
        """
    )

    result = no_litellm.runpytest_subprocess(
        "-m", "llm_eval", "-p", "no:cacheprovider", "--llmops-model=anthropic/claude-test", "--llmops-retries=0"
    )

    assert result.ret != 0
    result.stdout.fnmatch_lines(["*1 unmeasured*"])
    case = json.loads((no_litellm.path / ".llmops" / "results.json").read_text())["cases"][0]
    assert case["state"] == "unmeasured"
    assert "pip install 'pytest-llmops[litellm]'" in case["reason"]
