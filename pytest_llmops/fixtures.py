"""The fixtures eval tests use: ``llm``, ``judge``, ``reward_model``, ``prompt``, ``llmops_case``.

This module is registered by the plugin at start-up, so it imports nothing
heavy: the model client, the cache and the prompt library load inside the
fixtures, the first time a test asks for one.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmops.case import CaseRecord, current_case
from pytest_llmops.matrix.collect import cell_of, llmops_cell  # noqa: F401 - llmops_cell is a fixture
from pytest_llmops.session import get_state
from pytest_llmops.settings import Settings


#: For each client role: the settings naming its model and its api_base.
ROLE_SETTINGS = {"llm": ("model", "api_base"), "judge": ("judge", "judge_api_base"),
                 "reward": ("reward_model", "reward_api_base"),
                 "paraphraser": ("paraphraser", "paraphraser_api_base")}


def settings_for(request: pytest.FixtureRequest) -> Settings:
    """The run's settings with the test's ``llm_eval`` marker applied (marker wins)."""
    return node_settings(request.config, request.node)


def node_settings(config: pytest.Config, node: pytest.Item) -> Settings:
    """The run's settings with ``node``'s ``llm_eval`` marker applied (marker wins)."""
    settings = get_state(config).settings
    marker = node.get_closest_marker("llm_eval")
    if marker is not None and marker.kwargs:
        settings = settings.with_marker(marker.kwargs, node.nodeid)
    return settings


def model_client(request: pytest.FixtureRequest, role: str, *, model: str | None = None,
                 api_base: str | None = None, cache_endpoint: str | None = None) -> Any:
    """A client for ``role`` ("llm", "judge", "reward", "paraphraser") with the run's settings, as fixtures build it.

    ``model`` and ``api_base`` replace the configured ones: a suite's conftest
    can point its ``judge`` fixture at a server it starts itself. The client
    shares the run's cache, limits, budgets and records. ``cache_endpoint``
    names that server in cache keys instead of its URL, so answers of a server
    on a random port replay in the next run; give it a version of the server's
    script, so a changed script is asked again.
    """
    return role_client(request.config, request.node, role, model=model, api_base=api_base,
                       cache_endpoint=cache_endpoint)


def role_client(config: pytest.Config, node: pytest.Item, role: str, *, model: str | None = None,
                api_base: str | None = None, cache_endpoint: str | None = None) -> Any:
    """:func:`model_client` for a test item (the ``llm_robust`` runner builds the paraphraser with it)."""
    from pytest_llmops.models.client import LLMClient, ModelConfig, UnconfiguredModel
    from pytest_llmops.models.retry import RetryPolicy

    settings = node_settings(config, node)
    model_setting, api_base_setting = ROLE_SETTINGS[role]
    if model is None:
        model = getattr(settings, model_setting)
        api_base = api_base or getattr(settings, api_base_setting)
    if model is None:
        flag = "--llmops-" + model_setting.replace("_", "-")
        return UnconfiguredModel(role, f"llmops_{model_setting}", flag)  # type: ignore[arg-type]
    state = get_state(config)
    # The same settings give the same (frozen) config: built once, not for every test.
    key = (role, model, api_base, settings.timeout, settings.retries, settings.deadline, cache_endpoint,
           settings.reward_api)
    config_ = state.client_configs.get(key)
    if config_ is None:
        config_ = state.client_configs[key] = ModelConfig(
            model=model,
            role=role,  # type: ignore[arg-type]
            api_base=api_base,
            # A judge (and a paraphraser) should be as repeatable as it can be.
            params={"temperature": 0.0} if role != "llm" else {},
            timeout_s=settings.timeout,
            retry=RetryPolicy(retries=settings.retries, deadline_s=settings.deadline),
            cache_endpoint=cache_endpoint,
            reward_api=settings.reward_api,
        )
    if state.dry_run:
        from pytest_llmops.matrix.dry_run import DryRunClient

        return DryRunClient(config_, state.runtime(), plan=state.dry_plan)
    return LLMClient(config_, state.runtime())


@pytest.fixture
def llm(request: pytest.FixtureRequest) -> Any:
    """The model under test (``llmops_model``; the embedded local model by default).

    ``await llm.complete(prompt)`` in async tests, ``llm.complete_sync(prompt)``
    in sync ones; the answer is a ``str`` with its ``Call`` record on ``.call``.
    In a matrix cell (``llm_matrix``) it is the cell's model, at the cell's temperature.
    """
    cell = cell_of(request.node)
    if cell is None:
        return model_client(request, "llm")
    api_base = settings_for(request).api_base if cell.model is not None else None
    client = model_client(request, "llm", model=cell.model, api_base=api_base)
    return client if cell.temperature is None else client.with_params(temperature=cell.temperature)


@pytest.fixture
def judge(request: pytest.FixtureRequest) -> Any:
    """The judge model (``llmops_judge``). There is no default judge: unconfigured,
    every use ends the check unmeasured with a reason naming the setting."""
    return model_client(request, "judge")


@pytest.fixture
def reward_model(request: pytest.FixtureRequest) -> Any:
    """The reward model (``llmops_reward_model``, on ``llmops_reward_api_base``) for ``reward_score`` and
    ``assert_reward``. There is no default: unconfigured, every use ends the check unmeasured naming the setting."""
    return model_client(request, "reward")


@pytest.fixture
def prompt(request: pytest.FixtureRequest) -> Any:
    """The prompt template library (``llmops_prompts`` folders).

    ``prompt("support_qa", question=...)`` renders a template to messages; the
    template's name, version and hash are recorded on the case. In a matrix
    cell, ``prompt(question=...)`` renders the cell's template with the cell's
    few-shot examples and temperature.
    """
    from pytest_llmops.prompts import PromptError

    try:
        library = get_state(request.config).prompts()
    except PromptError as exc:
        pytest.fail(str(exc), pytrace=False)
    cell = cell_of(request.node)
    if cell is None:
        return library
    from pytest_llmops.matrix.prompting import CellPrompt

    return CellPrompt(library, cell)


@pytest.fixture
def llmops_case(request: pytest.FixtureRequest) -> CaseRecord:
    """The running case's record: add custom scores or metadata to the results file."""
    record = current_case()
    if record is None:  # pragma: no cover - the plugin opens a record for every test using this fixture
        raise RuntimeError("llmops_case is only available inside a test run by pytest-llmops")
    return record
