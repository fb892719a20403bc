"""Shared fixtures for the project's own tests.

Every provider path is exercised against ``LLMTestServer``, a real HTTP server
on 127.0.0.1 that speaks the OpenAI API; no test reaches the internet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_llmops.models.cache import CallCache, RecordMode
from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
from pytest_llmops.models.retry import RetryPolicy
from pytest_llmops.testing import LLMTestServer


@pytest.fixture(autouse=True, scope="session")
def _metrics_computed_afresh() -> Iterator[None]:
    """The project's own tests check computations, so they never read values kept by an earlier run."""
    from pytest_llmops import memo

    path, replay = memo.configure(None)
    yield
    memo.configure(path, replay=replay)


# litellm insists on a key for openai/ models; the test server ignores it.
TEST_API_KEY = "sk-test-key-never-stored"


@pytest.fixture
def api_key() -> str:
    return TEST_API_KEY


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer() as running:
        yield running


@pytest.fixture
def make_client(tmp_path: Path, server: LLMTestServer) -> Iterator[Callable[..., LLMClient]]:
    """Build clients against the test server sharing one runtime and cache per call of the factory."""
    runtimes: list[ModelRuntime] = []

    def make(
        *,
        model: str = "openai/test-model",
        record_mode: str = "new",
        cache_path: Path | None = None,
        retries: int = 3,
        timeout_s: float = 5.0,
        deadline_s: float = 30.0,
        base_delay_s: float = 0.01,
        role: str = "llm",
        runtime: ModelRuntime | None = None,
    ) -> LLMClient:
        if runtime is None:
            mode = RecordMode.parse(record_mode, source="test")
            cache = None if mode is RecordMode.OFF else CallCache(cache_path or tmp_path / "cache.sqlite")
            runtime = ModelRuntime(cache=cache, record_mode=mode)
            runtimes.append(runtime)
        config = ModelConfig(
            model=model,
            role=role,  # type: ignore[arg-type]
            api_base=server.url,
            api_key=TEST_API_KEY,
            timeout_s=timeout_s,
            retry=RetryPolicy(retries=retries, base_delay_s=base_delay_s, deadline_s=deadline_s),
        )
        return LLMClient(config, runtime)

    yield make
    for runtime in runtimes:
        runtime.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Import litellm before any in-process pytester run when one is coming.

    litellm pulls in ``importlib_metadata``, which adds a finder to
    ``sys.meta_path``. If that import first happens inside an inner run,
    pytester removes the modules afterwards but the finder stays behind,
    broken, and later inner runs find no entry points (so no plugin) and
    litellm cannot import again. Importing it up front keeps it out of
    pytester's snapshot.
    """
    if any("pytester" in getattr(item, "fixturenames", ()) for item in session.items):
        from pytest_llmops.models.litellm_backend import load_litellm

        load_litellm()
        # numpy's C core cannot be imported twice in one process, which is what
        # pytester's module clean-up would make the bootstrap of a later inner run do.
        import numpy  # noqa: F401

        # The direct OpenAI-compatible backend's HTTP library: the same with its C parts.
        import aiohttp  # noqa: F401
