"""The retrieval settings: ini values and command-line flags, checked at start-up.

Same pattern as ``pytest_llmops.settings``: ``--llmops-<name>`` on the command
line wins over ``llmops_<name>`` in the ini file, which wins over the default;
a bad value is a ``pytest.UsageError`` naming where it came from with an example.

Standard library and pytest only (the plugin imports it at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llmops.settings import Option, _convert, add_string_options

STORE_KINDS = ("numpy", "faiss", "faiss-hnsw", "chroma")

OPTIONS: tuple[Option, ...] = (
    Option("embedder", "embedding model for retrieval: minilm (offline all-MiniLM-L6-v2) or a litellm "
           "embedding model name", "minilm", example="openai/text-embedding-3-small"),
    Option("embedder_api_base", "base URL for the embedding model", None, example="http://127.0.0.1:8000/v1"),
    Option("retrieval_store", "vector store of the retriever fixture: numpy (in memory), faiss, faiss-hnsw, "
           "chroma, or package.module:factory for your own", "numpy", example="chroma"),
    Option("retrieval_path", "folder under which on-disk stores (faiss, chroma) and the embedding cache are kept "
           "(relative paths are under the rootdir)", ".llmops/retrieval", example=".llmops/retrieval"),
    Option("retrieval_corpus", "corpus of the retriever fixture when the suite's retrieval_config sets none: a "
           "folder of text files or a JSONL file (relative paths are under the rootdir)", None,
           example="docs/help-centre"),
)


@dataclass(frozen=True)
class RetrievalOptions:
    """The resolved retrieval options of a run."""

    embedder: str = "minilm"
    embedder_api_base: str | None = None
    retrieval_store: str = "numpy"
    retrieval_path: Path = Path(".llmops/retrieval")
    retrieval_corpus: Path | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)


_options_key = pytest.StashKey[RetrievalOptions]()


def add_options(parser: pytest.Parser) -> None:
    """Register the retrieval flags in the ``llmops`` group and their ini values."""
    add_string_options(parser, OPTIONS)


def _check_store(value: str, where: str, option: Option) -> str:
    text = value.strip()
    module, colon, attribute = text.partition(":")
    if text.lower() in STORE_KINDS:
        return text.lower()
    if colon and module and attribute:
        return text
    raise pytest.UsageError(
        f"{where}: expected one of {', '.join(STORE_KINDS)} or an import path package.module:factory, "
        f"got {value!r}. Example: {option.flag}={option.example}"
    )


def resolve_options(config: pytest.Config) -> RetrievalOptions:
    """The run's retrieval options (checked once, then kept on the config)."""
    cached = config.stash.get(_options_key, None)
    if cached is not None:
        return cached
    inifile = str(config.inipath) if config.inipath else "the ini file"
    root = Path(config.rootpath)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        raw = config.getoption(option.dest, default=None)
        source, where = "command line", option.flag
        if raw is None:
            raw = config.getini(option.ini)
            source, where = "ini", f"{option.ini} in {inifile}"
            if raw in (None, ""):
                raw, source = None, "default"
        value = _convert(option, raw, where) if raw is not None else option.default
        if value is None and raw is not None and option.default is not None:
            raise pytest.UsageError(f"{where}: expected a value, got an empty one. Example: {option.flag}={option.example}")
        if option.name == "retrieval_store" and value is not None:
            value = _check_store(str(value), where, option)
        if option.name in ("retrieval_path", "retrieval_corpus") and value is not None:
            value = Path(value)
            if not value.is_absolute():
                value = root / value
        values[option.name] = value
        sources[option.name] = source
    resolved = config.stash[_options_key] = RetrievalOptions(**values, sources=sources)
    return resolved
