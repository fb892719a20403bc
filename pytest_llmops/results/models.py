"""The versioned JSON results file (pydantic models).

The file records what is needed to reproduce and to re-judge a run: the
settings, the environment (Python, platform, package versions, git revision)
and, per case, its verdict, scores with their signatures, the prompts'
hashes and every provider call. Imported only when a run writes results.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llmops import redact

SCHEMA_VERSION = 1
#: Distributions whose versions can change a number in the results.
TRACKED_PACKAGES = (
    "pytest-llmops",
    "pytest",
    "litellm",
    "aiohttp",
    "openai",
    "llama-cpp-python",
    "pydantic",
    "jinja2",
    "rouge-score",
    "sacrebleu",
    "nltk",
    "bert-score",
    "torch",
    "transformers",
    "numpy",
    "scipy",
    "scikit-learn",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoreResult(_Frozen):
    name: str
    value: float | None
    verdict: Literal["pass", "fail", "unmeasured"]
    threshold: float | None = None
    higher_is_better: bool = True
    reason: str = ""
    signature: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class CallResult(_Frozen):
    model: str
    kind: Literal["chat", "embedding", "reward"]
    role: str
    api_base: str | None
    params: dict[str, Any]
    prompt_hash: str
    cache_key: str
    started_at: float
    latency_s: float | None = None
    ttft_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    attempts: int = 1
    backoff_s: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    error_type: str | None = None
    nodeid: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    #: Each attempt of a call that needed more than one: attempt, elapsed_s, error_type, status.
    attempt_log: list[dict[str, Any]] = Field(default_factory=list)


class PromptResult(_Frozen):
    name: str
    version: str
    hash: str


class MatrixCellRef(_Frozen):
    """The matrix cell a case ran in (``@pytest.mark.llm_matrix``)."""

    matrix: str
    #: The cell's id, e.g. ``qa_v2-t0.7-3shot``.
    cell: str
    #: The case without its cell: the same case in every cell shares it (for paired tests).
    case: str
    model: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    shots: int | None = None


class SpanResult(_Frozen):
    """One step of a case's trace: a model call, a retrieval, a ``@traced`` step, or the case itself.

    ``attributes`` use OpenInference and OpenTelemetry GenAI names (``llm.token_count.prompt``,
    ``gen_ai.request.model``, ``tool.name``, ``input.value``). Times are epoch seconds.
    """

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None = None
    start: float
    end: float | None = None
    duration_s: float | None = None
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    source: str = "llmops"


class CaseResult(_Frozen):
    nodeid: str
    state: Literal["passed", "failed", "unmeasured", "error", "skipped", "xfailed"]
    reason: str = ""
    #: For state "error" (the suite broke, not the model): the exception's type, e.g. ``KeyError``.
    error_type: str | None = None
    duration_s: float = 0.0
    markers: list[str] = Field(default_factory=list)
    scores: list[ScoreResult] = Field(default_factory=list)
    calls: list[CallResult] = Field(default_factory=list)
    prompts: list[PromptResult] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    #: The matrix cell of a case marked ``llm_matrix``.
    matrix: MatrixCellRef | None = None
    #: The case's span tree, root first (empty for results written before tracing).
    spans: list[SpanResult] = Field(default_factory=list)


class Environment(_Frozen):
    python: str
    platform: str
    packages: dict[str, str]
    git_revision: str | None = None
    #: The distinct runtimes that answered the run's calls (e.g. the local model's llama.cpp
    #: version, build features and weights), as the backends reported them on each ``Call``.
    runtimes: list[dict[str, str]] = Field(default_factory=list)


class GateResult(_Frozen):
    """One release gate evaluated on the run (``latency.p95<=2s``, ``pass_rate.lower>=0.9``)."""

    expression: str
    #: ``suite=PATH``, ``test=NAME`` or ``marker=NAME``; None for the whole run.
    scope: str | None = None
    #: The folder of the suite that declared it; no case outside it counts (None: ini / command line).
    within: str | None = None
    #: What was measured, e.g. ``pass_rate.lower``, ``faithfulness.mean``, ``latency.p95``.
    metric: str
    op: Literal[">=", "<=", ">", "<", "=="]
    threshold: float
    #: Unit of ``value`` and ``threshold``: "" (a plain number), "s", "usd", "tokens", "ms/token".
    unit: str = ""
    value: float | None
    verdict: Literal["pass", "fail", "unmeasured"]
    #: How many observations the value rests on (cases, scores or calls).
    n: int = 0
    #: How it was computed, e.g. "Wilson 95% interval [0.912, 0.981]" or "3 of 40 calls replayed".
    detail: str = ""
    #: Where the gate came from: "ini", "command line", "results file".
    source: str = ""


class MetricDelta(_Frozen):
    """One metric compared with the baseline, case by case (paired)."""

    metric: str
    kind: Literal["score", "pass_fail"]
    n_pairs: int
    baseline: float | None
    current: float | None
    delta: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    #: The statistical test, e.g. "paired bootstrap, 10000 resamples" or "exact McNemar, one-sided".
    test: str = ""
    verdict: Literal["regression", "improvement", "no significant change", "unmeasured"]
    reason: str = ""


class CaseDelta(_Frozen):
    """A case whose score moved against the baseline."""

    nodeid: str
    metric: str
    baseline: float | None
    current: float | None
    delta: float | None


class Comparison(_Frozen):
    """The run compared with a stored baseline."""

    baseline_name: str
    baseline_created_at: float
    baseline_git_revision: str | None = None
    tolerance: float
    alpha: float
    metrics: list[MetricDelta] = Field(default_factory=list)
    cases_only_in_baseline: list[str] = Field(default_factory=list)
    cases_only_in_current: list[str] = Field(default_factory=list)
    #: Loud warnings: a different judge, template hash or model than the baseline's.
    warnings: list[str] = Field(default_factory=list)
    regressed: bool = False
    worst_cases: list[CaseDelta] = Field(default_factory=list)


class LatencyGroup(_Frozen):
    """Latency, tokens and cost of the calls of one role and model in one group of tests."""

    role: str
    model: str
    #: "all", or the test file the calls came from.
    group: str = "all"
    calls: int
    #: Calls answered from the cache; their timings are the ones recorded when first made.
    replayed: int = 0
    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    ttft_p99_s: float | None = None
    ms_per_token: float | None = None
    #: Least-squares fit latency = intercept + slope x output tokens.
    slope_ms_per_token: float | None = None
    intercept_s: float | None = None
    #: Sums over the calls that reported them; None when none did (unknown, not 0).
    tokens_in: int | None = 0
    tokens_out: int | None = 0
    #: Calls whose provider did not say how many tokens they used.
    calls_unknown_tokens: int = 0
    cost_usd: float | None = None
    #: (output tokens, latency in s) of each call, for the length-vs-latency plot.
    points: list[tuple[int, float]] = Field(default_factory=list)


class Interval(_Frozen):
    """A figure with its confidence interval."""

    value: float
    low: float
    high: float
    n: int
    #: How the interval was computed, e.g. "Wilson 95%" or "bootstrap 95%, 2000 resamples".
    method: str = ""


class MatrixCellSummary(_Frozen):
    """One cell of a matrix: its quality with intervals, its cost, tokens and latency."""

    cell: str
    axes: dict[str, Any]
    cases: int
    passed: int
    failed: int
    unmeasured: int
    #: passed / (passed + failed) with its Wilson interval; None when no case was measured.
    pass_rate: Interval | None = None
    #: Each score's mean with a bootstrap interval.
    scores: dict[str, Interval] = Field(default_factory=dict)
    #: Total USD of the cell's calls; None when a call had no known price.
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    calls: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    #: With ``repeat=k``: share of cases with at least one passing repetition, and with all of them passing.
    repeat_k: int | None = None
    pass_at_k: float | None = None
    pass_hat_k: float | None = None
    #: Repetitions not run because early stopping found the cell decided.
    repetitions_saved: int = 0
    pareto: bool = False


class MatrixSummary(_Frozen):
    """A matrix's cells, its best cell and how sure the pick is."""

    name: str
    confidence: float
    cells: list[MatrixCellSummary]
    #: The cell with the highest Wilson lower bound of its pass rate.
    best: str | None = None
    runner_up: str | None = None
    #: Exact McNemar test (two-sided) of best vs runner-up on the cases both ran.
    p_value: float | None = None
    n_pairs: int = 0
    #: (best passed & runner-up failed, the reverse) on the paired cases.
    discordant: tuple[int, int] = (0, 0)
    #: "significantly better", "tied within noise", "only one cell", or "unmeasured".
    verdict: str = "unmeasured"
    #: One sentence for reports: "best: qa_v2-t0-3shot; tied within noise with ... (p=0.5)".
    statement: str = ""
    #: What the Pareto front weighs: e.g. ["pass rate", "cost", "latency p50"].
    pareto_axes: list[str] = Field(default_factory=list)
    early_stop: bool = False


class ShardRecord(_Frozen):
    """Which part of a suite a ``--llmops-shard=i/n`` run was, for ``llmops results merge`` to check."""

    index: int
    count: int
    #: sha256 of the sorted node ids of every eval case collected, in all shards: equal across one suite's shards.
    case_ids_hash: str
    cases_total: int
    #: The eval cases this shard ran.
    selected: list[str] = Field(default_factory=list)
    #: "hash" (node id hash) or "duration" (balanced by the previous results file's durations).
    balanced_by: Literal["hash", "duration"] = "hash"
    #: Hash of the results file the durations came from: shards balanced by different files may overlap.
    durations_hash: str | None = None
    #: Where the durations came from: "results file NAME" or "history run ID of suite S" (None: by hash).
    durations_from: str | None = None
    #: The gates the run was asked for, recorded, not decided: the merged run is gated on them.
    gates: list[str] = Field(default_factory=list)
    #: The folder each of ``gates`` was confined to (a suite's conftest gates), by gate text.
    gates_within: dict[str, str] = Field(default_factory=dict)


class RunResult(_Frozen):
    """One pytest-llmops run. ``schema_version`` changes when a field changes meaning."""

    schema_version: int = SCHEMA_VERSION
    started_at: float
    finished_at: float
    interrupted: bool = False
    exit_status: int | None = None
    settings: dict[str, Any]
    environment: Environment
    summary: dict[str, Any]
    cases: list[CaseResult]
    #: Scores computed once over a group of cases (corpus BLEU, chrF, TER).
    group_scores: list[ScoreResult] = Field(default_factory=list)
    #: Release gates, evaluated once on the controller.
    gates: list[GateResult] = Field(default_factory=list)
    #: The comparison with ``--llmops-compare NAME``, if asked for.
    comparison: Comparison | None = None
    #: Latency, token and cost figures per role, model and test file.
    latency: list[LatencyGroup] = Field(default_factory=list)
    #: Per-cell figures and the best cell of each ``llm_matrix``.
    matrices: list[MatrixSummary] = Field(default_factory=list)


    #: With ``--llmops-shard``: which part of the suite this is; None for a whole run.
    shard: ShardRecord | None = None
    #: With ``--llmops-shard``: the collected corpus pairs (``metrics._corpus`` state), scored when merged.
    corpus_state: dict[str, Any] | None = None


def package_versions() -> dict[str, str]:
    """Installed versions of the tracked packages, without importing them."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(folder: Path) -> str | None:
    """The commit checked out in ``folder`` (with ``-dirty`` when it has changes), if it is a git work tree."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def runtimes_of(cases: Sequence[CaseResult]) -> list[dict[str, str]]:
    """The distinct ``runtime`` records of the calls in ``cases``, in order of first use."""
    seen: list[dict[str, str]] = []
    for case in cases:
        for call in case.calls:
            runtime = call.extra.get("runtime")
            if runtime and runtime not in seen:
                seen.append(dict(runtime))
    return seen


def environment(folder: Path, cases: Sequence[CaseResult] = ()) -> Environment:
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=package_versions(),
        git_revision=git_revision(folder),
        runtimes=runtimes_of(cases),
    )


def redacted(result: RunResult) -> RunResult:
    """``result`` fit to be written or shown: no credential in any field (``pytest_llmops.redact``).

    Every string is redacted; the calls' ``params`` and ``extra`` also lose their credential fields.
    """
    secrets = redact.known_secrets()
    data = redact.redact(result.model_dump(mode="json"), secrets)
    for case in data["cases"]:
        for call in case["calls"]:
            call["params"] = redact.scrub(call["params"], secrets)
            call["extra"] = redact.scrub(call["extra"], secrets)
    return RunResult.model_validate(data)


def write_results(result: RunResult, path: Path, *, already_redacted: bool = False) -> None:
    """Write atomically, redacted: a reader never sees half a file or a credential, an
    interrupted write loses nothing old. Baselines are written here too.

    ``already_redacted=True`` skips the (costly on big runs) redaction pass for a result
    that ``redacted()`` made.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (result if already_redacted else redacted(result)).model_dump_json(indent=2)
    handle, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UnfinishedRunError(ValueError):
    """The results file was set aside by a run that has not written it again (still running, or killed)."""


def read_results(path: Path) -> RunResult:
    """Load a results file, checking its schema version.

    Raises ``UnfinishedRunError`` when a run moved the file aside as it
    started and has not finished (see ``results.previous``): the old file is
    not this run's, and is not read as if it were.
    """
    from pytest_llmops.results.previous import unfinished_run_message

    unfinished = unfinished_run_message(Path(path))
    if unfinished is not None:
        raise UnfinishedRunError(unfinished)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: results schema version {version!r}, this pytest-llmops reads version {SCHEMA_VERSION}"
        )
    return RunResult.model_validate(data)
