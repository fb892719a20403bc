"""The run's side of the history: append the finished run, and find a baseline run in it."""

from __future__ import annotations

import os
import posixpath
import subprocess
import time
from pathlib import Path

from pytest_llmops.history.store import HistoryStore
from pytest_llmops.results.models import RunResult

#: CI variables that name the branch being built, most specific first (a PR's own branch before the
#: ref GitHub merges it into); LLMOPS_GIT_BRANCH overrides them all.
_BRANCH_VARIABLES = ("LLMOPS_GIT_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")


def current_branch(root: Path) -> str | None:
    """The branch this run evaluates: from CI's variables, else git; None when detached or not a repo."""
    for name in _BRANCH_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    branch = out.stdout.strip()
    return branch if out.returncode == 0 and branch and branch != "HEAD" else None


def suite_of(run: RunResult) -> str:
    """The deepest folder holding every case's test file ("" when the cases share none)."""
    return suite_of_ids([case.nodeid for case in run.cases])


def suite_of_ids(nodeids: list[str]) -> str:
    """:func:`suite_of` for node ids not yet run (the collected cases of a shard)."""
    folders = {posixpath.dirname(nodeid.split("::", 1)[0]) for nodeid in nodeids}
    return posixpath.commonpath(sorted(folders)) if folders else ""


def append_run(path: Path, run: RunResult, root: Path) -> str:
    """Append the (redacted) ``run`` to the history at ``path``; returns the run's id."""
    with HistoryStore(path) as store:
        return store.append(run, branch=current_branch(root), suite=suite_of(run))


def baseline_from_history(path: Path, ref: str, *, max_age_s: float) -> tuple[str, RunResult, list[str]]:
    """The run ``ref`` names (``main@latest``, ``@RUN_ID``, ``@GIT_REV``): its label, results and warnings.

    Raises :class:`~pytest_llmops.history.store.HistoryError` when there is no such run.
    """
    from pytest_llmops.history.store import HistoryError

    if not path.is_file():
        raise HistoryError(
            f"--llmops-compare={ref}: no history at {path} yet; runs are appended there when they finish "
            "(--llmops-history), so run the suites on the branch you compare with first"
        )
    with HistoryStore(path) as store:
        run_id, baseline = store.resolve(ref)
    warnings = []
    age = time.time() - baseline.finished_at
    if age > max_age_s:
        warnings.append(
            f"baseline run {run_id} ({ref}) finished {age / 86400:.1f} days ago, more than "
            f"--llmops-compare-max-age ({max_age_s / 86400:g} days): it may not stand for {ref.split('@')[0] or 'it'} now"
        )
    return f"{ref} (run {run_id})", baseline, warnings
