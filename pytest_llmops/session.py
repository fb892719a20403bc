"""Per-run state of the plugin, kept in ``config.stash``.

Nothing expensive happens here until a test asks for it: the model runtime
(and with it the cache) and the prompt library are built on first use, so a
run with no eval tests never opens a database or imports a provider SDK.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmops.results.collect import CaseOutcome
from pytest_llmops.settings import Settings
from pytest_llmops.verdict import Score

if TYPE_CHECKING:
    from pytest_llmops.models.client import ModelRuntime
    from pytest_llmops.gates.parse import Gate
    from pytest_llmops.results.finish import RunEnd


class LLMOpsState:
    """What one pytest process knows about the run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.started_at = time.time()
        self.cases: dict[str, CaseOutcome] = {}
        self._runtime: ModelRuntime | None = None
        self._prompts: Any = None
        #: What the end of the run decided (results, gates, exit status), once it ended.
        self.end: RunEnd | None = None
        #: Gates declared by the collected suites' conftest.py files (``llmops_gates``).
        self.suite_gates: list[Gate] = []
        #: Failed reports of tests that are not eval cases, and failing corpus scores: no gate excuses them.
        self.other_failures = 0
        #: Scores computed once over a group of cases (corpus BLEU, chrF, TER).
        self.group_scores: list[Score] = []
        #: ``--llmops-dry-run``: no call is sent; each planned call is appended to ``dry_plan``.
        self.dry_run = False
        self.dry_plan: list[dict[str, Any]] = []
        #: The store of computed values before this run set its own (``pytest_llmops.memo``), put back at the end.
        self.memo_before: tuple[Any, bool] = (None, True)
        #: Pass counts per matrix cell, for early stopping of repetitions (``pytest_llmops.matrix.early_stop``).
        self.matrix_tracker: Any = None
        #: The cells of each matrix collected, by matrix name.
        self.matrix_grid: dict[str, list[Any]] = {}
        #: Matrices that could not be built, raised as one usage error after collection.
        self.matrix_errors: list[str] = []
        #: With ``--llmops-shard``: which part of the suite this run is (``results.models.ShardRecord`` fields).
        self.shard: dict[str, Any] | None = None
        #: With ``--llmops-shard``: the corpus pairs collected, kept for ``llmops results merge`` to score.
        self.corpus_state: dict[str, Any] | None = None
        #: The clients' ``ModelConfig`` by the settings that make it (``fixtures.role_client``).
        self.client_configs: dict[tuple[Any, ...], Any] = {}

    @property
    def is_worker(self) -> bool:
        """True on a pytest-xdist worker: the controller writes results and summaries."""
        return hasattr(self.config, "workerinput")

    @property
    def runtime_started(self) -> bool:
        return self._runtime is not None

    def runtime(self) -> ModelRuntime:
        """The session's model runtime, created (with its cache) on first use."""
        if self._runtime is None:
            from pytest_llmops.models.cache import CallCache, RecordMode
            from pytest_llmops.models.budget import Budget
            from pytest_llmops.models.client import ModelRuntime

            mode = RecordMode.parse(self.settings.record_mode, source="llmops_record_mode")
            cache = None if mode is RecordMode.OFF else CallCache(self.settings.cache_path)
            if cache is not None:
                # Open now: an unusable file is a CacheError naming the path and the fix,
                # reported on the test that needed it (the plugin shows the message only).
                cache.stats()
            self._runtime = ModelRuntime(
                cache=cache,
                record_mode=mode,
                concurrency=self.settings.concurrency,
                client=self.settings.client,
                budget=Budget(max_cost_usd=self.settings.max_cost, max_calls=self.settings.max_calls),
                keep_calls=False,  # each call rides on its case's reports
            )
        return self._runtime

    def prompts(self) -> Any:
        """The prompt library over the configured folders, loaded on first use."""
        if self._prompts is None:
            from pytest_llmops.prompts import PromptLibrary

            self._prompts = PromptLibrary(*self.settings.prompts)
        return self._prompts

    def outcome(self, nodeid: str) -> CaseOutcome:
        case = self.cases.get(nodeid)
        if case is None:
            case = self.cases[nodeid] = CaseOutcome(nodeid)
        return case

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


state_key = pytest.StashKey[LLMOpsState]()


def get_state(config: pytest.Config) -> LLMOpsState:
    return config.stash[state_key]
