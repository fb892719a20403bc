"""Optional libraries of the drift package: imported on use, with the exact install command when missing."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from types import ModuleType

from pytest_llmops.metrics._deps import MissingDependencyError, require, version_of

__all__ = ["MissingDependencyError", "blas_threads", "make_signature", "need", "package_version", "version_of"]

#: distribution -> the extra of pytest-llmops that brings it
_EXTRA = {
    "numpy": "drift",
    "scipy": "drift",
    "scikit-learn": "drift",
    "matplotlib": "drift",
}


def need(module: str, distribution: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` saying what to pip install."""
    return require(module, distribution, purpose=purpose, extra=_EXTRA.get(distribution))


def package_version() -> str:
    """The installed pytest-llmops version (recorded in baselines and signatures)."""
    found = version_of("pytest-llmops")
    if found != "unknown":
        return found
    import pytest_llmops

    return getattr(pytest_llmops, "__version__", "unknown")


def make_signature(method: str, options: dict[str, object], libraries: tuple[str, ...] = ("numpy",)) -> str:
    """A sacrebleu-style signature: ``drift:mmd|kernel:rbf|...|pytest-llmops:0.1.0|numpy:2.4.6``.

    Options that are ``None`` are left out; library versions come last.
    """
    parts = [f"drift:{method}"]
    parts.extend(f"{key}:{value}" for key, value in options.items() if value is not None)
    parts.append(f"pytest-llmops:{package_version()}")
    parts.extend(f"{lib}:{version_of(lib)}" for lib in libraries)
    return "|".join(parts)


_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads() -> AbstractContextManager[object]:
    """One BLAS thread for the drift computations, unless the user chose a number.

    On small shared machines (CI runners, 2 cores busy with other work) a
    multi-threaded BLAS spends more time waiting for its threads than it
    saves: an SVD of 512 x 512 ran 10x slower on two threads than on one.
    Setting ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` leaves it alone.
    """
    import os

    if any(os.environ.get(name) for name in _THREAD_ENV):
        return nullcontext()
    threadpoolctl = need("threadpoolctl", "threadpoolctl", purpose="drift checks")
    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")
