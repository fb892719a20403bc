"""Eval runs exported to MLflow, read back from a real MLflow store and a real local ``mlflow server``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmops.cli import main as llmops

mlflow = pytest.importorskip("mlflow", reason="the [mlflow] extra (a dev dependency) is not installed")
from mlflow.tracking import MlflowClient  # noqa: E402

pytest_plugins = ["pytester"]

SUITE = """
import pytest
from pytest_llmops import Score, require

@pytest.mark.llm_eval
@pytest.mark.parametrize("question", ["Where?", "When?", "Who?"])
def test_answer(prompt, llm, question):
    answer = llm.complete_sync(prompt("qa", question=question))
    require(Score.measured("quality", 0.8 if question != "Who?" else 0.2, threshold=0.5))
"""


@pytest.fixture
def eval_args(server, monkeypatch, api_key) -> list[str]:
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    monkeypatch.setenv("LLMOPS_GIT_BRANCH", "feature/mlflow")
    # A down tracking server must fail fast in these tests, not after MLflow's default 7 retries.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return [
        "--llmops-model=openai/test-model", f"--llmops-api-base={server.url}", "-p", "no:cacheprovider",
        "--llmops-gate=pass_rate>=0.5", "--llmops-history=off",
    ]


def make_suite(pytester: pytest.Pytester) -> None:
    pytester.mkdir("prompts")
    pytester.path.joinpath("prompts", "qa.toml").write_text(
        'version = "2"\ntemperature = 0.0\nsystem = "Be brief."\ntemplate = "Question: {{ question }}"\n'
    )
    pytester.makepyfile(test_suite=SUITE)


def only_run(client: MlflowClient, experiment: str = "pytest-llmops"):  # type: ignore[no-untyped-def]
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def artifact_paths(client: MlflowClient, run_id: str, folder: str | None = None) -> set[str]:
    paths = set()
    for item in client.list_artifacts(run_id, folder):
        paths |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return paths


def test_a_results_file_becomes_one_mlflow_run_with_params_metrics_tags_and_artifacts(
    pytester, eval_args, tmp_path, capsys
):
    make_suite(pytester)
    pytester.runpytest(*eval_args, "--llmops-html=.llmops/report.html").assert_outcomes(passed=2, failed=1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = ".llmops/results.json"

    assert llmops(["export", "mlflow", results, "--tracking-uri", uri]) == 0
    assert "logged as MLflow run" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    logged = only_run(client)

    assert logged.info.status == "FINISHED"
    assert logged.data.params["models.llm"] == "openai/test-model"  # by role: llm, judge, embedder
    assert len(logged.data.params["prompt.qa:2"]) == 64  # the template's content hash
    assert logged.data.params["setting.model"] == "openai/test-model"
    metrics = logged.data.metrics
    assert metrics["score.quality.mean"] == pytest.approx((0.8 + 0.8 + 0.2) / 3)
    assert metrics["pass_rate"] == pytest.approx(2 / 3)
    assert metrics["gate.pass_rate ge 0.5"] == pytest.approx(2 / 3)  # '>=' is not allowed in an MLflow key
    assert metrics["cases.passed"] == 2 and metrics["cases.failed"] == 1
    assert logged.data.tags["llmops.verdict"] == "pass"  # the gate tolerates the one failed case
    assert logged.data.tags["llmops.git_branch"] == "feature/mlflow"
    assert artifact_paths(client, logged.info.run_id) == {
        "results.json", "cases.csv", "reports/report.html", "prompts/qa.toml",
    }
    table = Path(mlflow.artifacts.download_artifacts(run_id=logged.info.run_id, artifact_path="cases.csv",
                                                     tracking_uri=uri, dst_path=str(tmp_path / "dl")))
    lines = table.read_text().splitlines()
    assert lines[0] == "nodeid,state,reason,duration_s,quality" and len(lines) == 4
    (version,) = list(client.search_prompt_versions("qa"))
    assert version.tags["llmops.version"] == "2"
    assert version.template[0] == {"role": "system", "content": "Be brief."}

    # The same results again: found by their run id, nothing logged twice.
    assert llmops(["export", "mlflow", results, "--tracking-uri", uri]) == 0
    assert "already exported as MLflow run " + logged.info.run_id in capsys.readouterr().out
    assert only_run(client).info.run_id == logged.info.run_id
    assert len(list(client.search_prompt_versions("qa"))) == 1


def test_the_file_store_works_where_mlflow_allows_it(pytester, eval_args, tmp_path, monkeypatch, capsys):
    # MLflow 3 refuses its deprecated file store unless asked; a user who asks gets it.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    make_suite(pytester)
    pytester.runpytest(*eval_args).assert_outcomes(passed=2, failed=1)
    store = tmp_path / "mlruns"
    assert llmops(["export", "mlflow", ".llmops/results.json", "--tracking-uri", store.as_uri(),
                   "--experiment", "nightly"]) == 0
    logged = only_run(MlflowClient(tracking_uri=store.as_uri()), "nightly")
    assert logged.data.metrics["cases.passed"] == 2
    assert (store / logged.info.experiment_id / logged.info.run_id / "artifacts" / "results.json").is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1, with its own SQLite store and artifact folder."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start:\n" + (tmp_path / "mlflow-server.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_run_exports_itself_to_a_tracking_server_at_its_end(pytester, eval_args, mlflow_server):
    make_suite(pytester)
    result = pytester.runpytest(*eval_args, f"--llmops-mlflow={mlflow_server}", "--llmops-mlflow-experiment=ci")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*results: .llmops/results.json*MLflow run: *"])
    client = MlflowClient(tracking_uri=mlflow_server)
    logged = only_run(client, "ci")
    assert logged.data.metrics["score.quality.mean"] == pytest.approx(0.6)
    assert "results.json" in artifact_paths(client, logged.info.run_id)
    recorded = json.loads((pytester.path / ".llmops" / "results.json").read_text())
    assert logged.data.tags["llmops.run_id"]  # the same id the history gives these results
    assert recorded["settings"]["mlflow"] == mlflow_server


def test_a_tracking_server_that_is_down_is_named_and_the_results_stay(pytester, eval_args):
    make_suite(pytester)
    down = f"http://127.0.0.1:{free_port()}"
    result = pytester.runpytest(*eval_args, f"--llmops-mlflow={down}")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == 0  # the export is not a gate: the pass-rate gate decides, as without it
    result.stdout.fnmatch_lines([
        f"llmops: run not exported to MLflow (--llmops-mlflow / llmops_mlflow): MLflow at {down}: *"
        "`llmops export mlflow .llmops/results.json` exports it later."
    ])
    assert (pytester.path / ".llmops" / "results.json").is_file()


def test_mlflow_settings_are_checked_before_any_call(pytester, eval_args, server, monkeypatch):
    make_suite(pytester)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = pytester.runpytest(*eval_args, "--llmops-mlflow=env")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmops-mlflow: expected a tracking URI: it is 'env', and MLFLOW_TRACKING_URI is not set*"])
    assert server.received == []


def test_export_without_a_tracking_uri_says_how_to_give_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert llmops(["export", "mlflow", str(tmp_path / "results.json")]) == 2
    assert "needs --tracking-uri (or MLFLOW_TRACKING_URI set)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("expression", "key"),
    [
        ("pass_rate>=0.5", "gate.pass_rate ge 0.5"),
        ("[suite=evalsuites/rag_qa] recall_at_5.mean>=0.8", "gate.suite:evalsuites/rag_qa recall_at_5.mean ge 0.8"),
        ("latency.p95<=2s", "gate.latency.p95 le 2s"),
    ],
)
def test_gate_expressions_become_readable_mlflow_keys(expression, key):
    from pytest_llmops.exports.mlflow import gate_key

    assert gate_key(expression) == key
