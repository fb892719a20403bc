"""Run history: every finished run in one SQLite file, for trends, model versions and baselines.

See :mod:`pytest_llmops.history.store` for the file and
:mod:`pytest_llmops.history.cli` for ``llmops history``.
"""
