"""Test helpers: a local OpenAI-compatible server and its pytest fixture.

``LLMTestServer`` is a real HTTP server on 127.0.0.1 that answers like the
OpenAI API: deterministic replies, scripted replies, logprobs, streaming,
embeddings, injected faults and request counters. Point litellm (``openai/``
models), the ``openai`` SDK or any HTTP client at ``server.url``::

    import json

    import litellm
    from pytest_llmops.testing import Fault, LLMTestServer

    with LLMTestServer(latency=0.05) as server:
        server.script(r"Rate the answer", {"verdict": "yes", "score": 4})
        reply = litellm.completion(
            model="openai/test-model", api_base=server.url, api_key="test",
            messages=[{"role": "user", "content": "Rate the answer: Paris"}],
            max_retries=0,
        )
        assert json.loads(reply.choices[0].message.content)["verdict"] == "yes"

        server.inject(Fault.rate_limit(retry_after=0.5))  # the next call gets a 429
        assert server.requests == 1 and server.max_in_flight == 1

In a test, take the ``llm_server`` fixture (from
``pytest_llmops.testing.fixtures``) for a started server that is stopped
after the test.

Standard library only: the plugin imports this package at start-up, so the
server module (and ``http.server`` with it) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

_EXPORTS = {name: "pytest_llmops.testing.server" for name in ("Fault", "LLMTestServer", "ReceivedRequest")}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from pytest_llmops.testing.server import Fault, LLMTestServer, ReceivedRequest
