"""The model layer reaches nothing but the provider it is pointed at, and respects the user's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json, os, sys
    connections = []

    def audit(event, args):
        if event == "socket.connect":
            connections.append(str(args[1]))
        elif event == "socket.getaddrinfo":
            connections.append("lookup:" + str(args[0]))

    sys.addaudithook(audit)
    from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime
    from pytest_llmops.testing import LLMTestServer

    with LLMTestServer() as server:
        runtime = ModelRuntime()
        client = LLMClient(ModelConfig(model="openai/gpt-4o-mini", api_base=server.url, api_key="sk-x"), runtime)
        answer = client.complete_sync("hello", stream=True)
        client.complete_sync("hello again")
        client.embed_sync(["a", "b"])
        runtime.close()
    print("COST", answer.call.cost_usd)
    print("LOG", os.environ["LITELLM_LOG"])
    print("CONNECTIONS", json.dumps(sorted(set(connections))))
    """
)


def run_probe(**env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM")}
    environment.update(env)
    output = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, timeout=300
    )
    assert output.returncode == 0, output.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in output.stdout.splitlines() if line[:4] in ("COST", "LOG ", "CONN"))
    return lines


def test_calls_connect_only_to_the_local_server_and_prices_come_from_the_shipped_map():
    lines = run_probe()
    connections = json.loads(lines["CONNECTIONS"])
    assert connections, "the probe saw no connection at all"
    assert all("127.0.0.1" in c for c in connections), connections
    # Offline, litellm still prices known models from the cost map it ships.
    assert float(lines["COST"]) > 0
    assert lines["LOG"] == "ERROR"


def test_a_setting_the_user_made_is_kept():
    assert run_probe(LITELLM_LOG="WARNING")["LOG"] == "WARNING"
