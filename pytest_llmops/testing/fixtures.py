"""pytest fixtures for the local OpenAI-compatible test server.

Registered by the pytest-llmops plugin; in a project without it, add
``pytest_plugins = ["pytest_llmops.testing.fixtures"]`` to a conftest.py.
Standard library and pytest only: the plugin imports this module at start-up (the
server itself loads when the fixture is first used).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_llmops.testing.server import LLMTestServer

__all__ = ["llm_server"]


@pytest.fixture
def llm_server() -> Iterator[LLMTestServer]:
    """A started ``LLMTestServer`` on 127.0.0.1, stopped after the test.

    Use ``llm_server.url`` as the api_base of litellm ``openai/<name>`` models
    (or the openai SDK's ``base_url``); script replies, inject faults and read
    the counters on the fixture itself.
    """
    from pytest_llmops.testing.server import LLMTestServer

    with LLMTestServer() as server:
        yield server
