"""The plugin loads in every pytest run of an environment: its import must stay light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("litellm", "openai", "httpx", "aiohttp", "torch", "transformers", "numpy", "scipy", "sklearn", "pydantic", "jinja2", "llama_cpp", "nltk", "sqlite3", "mlflow", "opentelemetry")


def modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(output.split())


def test_the_plugin_entry_module_and_its_fixtures_import_nothing_heavy():
    loaded = modules_after(
        "import pytest_llmops.plugin, pytest_llmops.fixtures, pytest_llmops.testing.fixtures"
    )
    assert "pytest_llmops.plugin" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_a_plain_pytest_run_with_the_plugin_imports_nothing_heavy(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    assert True\n")
    (tmp_path / "conftest.py").write_text(
        "import sys\n"
        f"HEAVY = {HEAVY!r}\n"
        "def pytest_sessionfinish(session):\n"
        "    print('LOADED:', session.config.pluginmanager.has_plugin('llmops'))\n"
        "    print('HEAVY:', [m for m in HEAVY if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOADED: True" in result.stdout
    assert "HEAVY: []" in result.stdout
    assert not (tmp_path / ".llmops").exists()


def test_public_names_load_lazily():
    loaded = modules_after("import pytest_llmops; pytest_llmops.Score; pytest_llmops.require")
    assert "pytest_llmops.verdict" in loaded
    assert "pytest_llmops.models.client" not in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_the_robust_checks_and_runner_do_not_import_hypothesis():
    loaded = modules_after("import pytest_llmops.robust, pytest_llmops.robust.runner, pytest_llmops.robust.asr")
    assert "pytest_llmops.robust.runner" in loaded
    assert sorted(m for m in (*HEAVY, "hypothesis") if m in loaded) == []


def test_the_matrix_modules_the_plugin_loads_import_nothing_heavy():
    # Collection parametrizes llm_matrix tests and repeats may stop early in every run: both stay light.
    loaded = modules_after("import pytest_llmops.matrix.collect, pytest_llmops.matrix.cells, pytest_llmops.matrix.early_stop")
    assert sorted(m for m in HEAVY if m in loaded) == []
    assert "pytest_llmops.matrix.summary" not in loaded and "pytest_llmops.matrix.dry_run" not in loaded


def test_the_shard_split_imports_nothing_heavy():
    loaded = modules_after("import pytest_llmops.shards as s; s.assign(['a', 'b'], 2)")
    assert sorted(m for m in HEAVY if m in loaded) == []
    # The history (sqlite3, pydantic) is opened only when a shard run balances by it.
    assert "pytest_llmops.history.store" not in loaded


def test_the_score_windows_and_summary_gates_are_light_enough_for_the_cli():
    loaded = modules_after("import pytest_llmops.scoring.windows, pytest_llmops.scoring.cli, pytest_llmops.drift.scores")
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_the_review_modules_the_plugin_and_the_cli_load_are_light():
    loaded = modules_after(
        "import pytest_llmops.review.select, pytest_llmops.review.overrides, pytest_llmops.review.cli"
    )
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_the_preference_export_needs_neither_pytest_nor_trl():
    # Training pipelines import it outside pytest; TRL and datasets are only the test's check of its files.
    loaded = modules_after("import pytest_llmops.exports.preferences, pytest_llmops.exports.cli")
    assert "pytest_llmops.exports.preferences" in loaded
    assert sorted(m for m in ("pytest", "_pytest", "trl", "datasets", "torch", "mlflow") if m in loaded) == []


def test_the_reward_metric_and_assertions_import_nothing_heavy():
    # A suite imports these at collection; the model client loads only when a reward is asked for.
    loaded = modules_after("import pytest_llmops.metrics._reward, pytest_llmops.assertions.reward")
    assert sorted(m for m in HEAVY if m in loaded) == []
    assert "pytest_llmops.models.client" not in loaded


def test_the_judge_audit_modules_and_the_llmops_parser_import_nothing_heavy():
    # `llmops --help` builds every subcommand's parser; the audit's modules load pydantic and numpy only when it runs.
    loaded = modules_after(
        "import pytest_llmops.judges.audit.runner, pytest_llmops.judges.audit.report, pytest_llmops.cli as c; "
        "c.build_parser()"
    )
    assert "pytest_llmops.judges.audit.runner" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []
