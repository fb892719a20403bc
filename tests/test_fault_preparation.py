"""Issue 15, item 4: preparing a model is not part of any call's deadline or latency.

Preparation is what a backend does once before its first call of a model:
importing litellm (24-28 s on a loaded machine), loading the local model. A
call's deadline (``--llmops-deadline``) starts once the model is ready, and
the deadline bounds the whole call, backoff included, within a small margin.
Every call here goes to the real local test server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time

import pytest

from pytest_llmops.models.backend import ProviderError, ProviderTimeout
from pytest_llmops.models.openai_http import OpenAIHTTPBackend
from pytest_llmops.testing import Fault

#: How far past its deadline a call may end (event-loop scheduling, closing the connection).
MARGIN_S = 0.3


class SlowToPrepare(OpenAIHTTPBackend):
    """The direct backend with a set-up as slow as importing litellm on a busy machine."""

    def __init__(self, seconds: float, error: ProviderError | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.error = error
        self.preparations = 0

    def prepare(self, model: str) -> None:
        self.preparations += 1
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        super().prepare(model)


def slow_client(make_client, seconds: float, **options):
    client = make_client(**options)
    backend = SlowToPrepare(seconds)
    # The runtime's direct backend, as backend_for would build it, swapped for the slow one.
    client.runtime._backends["openai-http"] = backend
    return client, backend


def test_a_set_up_longer_than_the_deadline_does_not_use_up_the_deadline(make_client, server):
    server.latency = 0.05
    client, backend = slow_client(make_client, 1.5, deadline_s=0.5, record_mode="off")

    answer = client.complete_sync("first call of the model")

    assert answer.startswith("Reply")
    assert backend.preparations == 1
    assert server.requests == 1
    call = answer.call
    assert call.attempts == 1 and call.error is None
    # The set-up's 1.5 s is not the call's latency.
    assert 0.05 <= call.latency_s < 0.5


def test_concurrent_first_calls_share_one_set_up_and_all_answer(make_client, server):
    server.latency = 0.05
    client, backend = slow_client(make_client, 1.0, deadline_s=0.5, record_mode="off")

    async def four():
        return await asyncio.gather(*(client.complete(f"question {i}") for i in range(4)))

    answers = client.runtime.run(four())

    assert backend.preparations == 1
    assert server.requests == 4
    assert all(a.call.error is None and a.call.latency_s < 0.5 for a in answers)


def test_the_deadline_starts_once_the_model_is_ready(make_client, server):
    server.inject(Fault.hang(), times=10)
    client, _ = slow_client(make_client, 1.0, deadline_s=0.6, timeout_s=30, record_mode="off")

    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="0.6 s deadline"):
        client.complete_sync("stuck after a slow set-up")
    elapsed = time.monotonic() - started

    # 1.0 s of set-up, then the full 0.6 s deadline for the call, and no more.
    assert 1.0 + 0.6 <= elapsed < 1.0 + 0.6 + MARGIN_S
    assert server.requests == 1


def test_a_failed_set_up_ends_the_call_unmeasured_with_its_reason_and_nothing_sent(make_client, server):
    client = make_client(record_mode="off")
    error = ProviderError("openai/test-model: the set-up failed: pip install something", retryable=False)
    client.runtime._backends["openai-http"] = SlowToPrepare(0.0, error=error)

    with pytest.raises(ProviderError, match="the set-up failed") as caught:
        client.complete_sync("never sent")

    assert server.requests == 0
    call = caught.value.call
    assert call.attempts == 0 and "the set-up failed" in call.error
    assert client.runtime.calls == [call]


def test_backoff_never_carries_a_call_past_its_deadline(make_client, server):
    # The provider keeps asking for 0.35 s of patience; the deadline is 1 s.
    server.inject(Fault.rate_limit(retry_after=0.35), times=20)
    client = make_client(retries=20, deadline_s=1.0, record_mode="off")

    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        client.complete_sync("always throttled")
    elapsed = time.monotonic() - started

    assert elapsed < 1.0 + MARGIN_S
    assert caught.value.call.attempts >= 2
    assert caught.value.call.backoff_s < 1.0


def test_the_litellm_import_is_not_charged_to_a_one_second_deadline(server):
    # The run: --llmops-client=litellm in a fresh interpreter, where the first call
    # imports litellm (seconds) and the deadline is shorter than that import.
    server.latency = 0.05
    code = textwrap.dedent(
        f"""
        import json, sys, time
        from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
        from pytest_llmops.models.retry import RetryPolicy

        runtime = ModelRuntime(client="litellm")
        config = ModelConfig(model="openai/test-model", api_base={server.url!r}, api_key="sk-test",
                             retry=RetryPolicy(deadline_s=1.0))
        started = time.monotonic()
        answer = LLMClient(config, runtime).complete_sync("first call, litellm not imported yet")
        print(json.dumps([time.monotonic() - started, answer.call.latency_s, answer.call.attempts,
                          "litellm" in sys.modules]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    total, latency, attempts, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported
    assert attempts == 1 and latency < 1.0
    assert server.requests == 1
    print(f"first call incl. the litellm import: {total:.2f} s, its latency {latency:.3f} s")


def test_the_local_model_loads_in_its_preparation_not_in_the_first_timed_call():
    # A fresh interpreter, so llama.cpp is not imported and the model not loaded yet.
    code = textwrap.dedent(
        """
        import json, time
        from pytest_llmops.models import local
        from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime

        class Timed(local.LocalLlamaBackend):
            def prepare(self, model):
                started = time.perf_counter()
                super().prepare(model)
                self.prepare_s = time.perf_counter() - started
                self.loaded_after_prepare = bool(local._loaded)

        runtime = ModelRuntime()
        backend = runtime._backends["local"] = Timed()
        answer = LLMClient(ModelConfig(model="local/smollm2"), runtime).complete_sync("Say hi.", max_tokens=1)
        print(json.dumps([backend.loaded_after_prepare, backend.prepare_s, answer.call.latency_s, len(local._loaded)]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded_after_prepare, prepare_s, latency, instances = json.loads(done.stdout.strip().splitlines()[-1])
    # Loaded once, by the preparation: the first attempt found it ready.
    assert loaded_after_prepare and instances == 1
    assert latency is not None
    print(f"local model set-up {prepare_s:.3f} s, first call's latency {latency:.3f} s")
