"""The ``retriever`` fixture in a pytest run: per-suite config, store options, and clear setup errors."""

from __future__ import annotations

import pytest

pytest.importorskip("faiss")
pytest.importorskip("chromadb")

CORPUS = {
    "returns.md": "# Returns\n\nYou can return the lamp within 30 days. Refunds take five business days.",
    "bulbs.md": "# Bulbs\n\nThe lamp takes one E27 bulb. Use bulbs of 10 watts or less.",
    "cleaning.md": "# Cleaning\n\nWipe the shade with a dry cloth. Never use water on the base.",
}

SUITE_CONFTEST = """
from pathlib import Path

import pytest

from pytest_llmops.retrieval.config import RetrievalConfig
from pytest_llmops.retrieval.corpus import Chunking


@pytest.fixture
def retrieval_config():
    return RetrievalConfig(corpus=Path(__file__).with_name("corpus"), chunking=Chunking("sentences", 2, 1), k=2)
"""

SUITE_TESTS = """
import pytest

from pytest_llmops.assertions import assert_retrieval

SEEN = []


@pytest.mark.llm_eval
async def test_finds_the_return_window(retriever):
    results = await retriever.search("How long do I have to send the lamp back?")
    assert len(results) == 2  # the suite's k
    assert_retrieval(results, ["returns#0"], k=2)
    SEEN.append(retriever)


@pytest.mark.llm_eval
def test_finds_the_bulb_rating(retriever):
    assert_retrieval(retriever.search_sync("What wattage of bulb can I use?", k=3), ["bulbs#1"], k=3)
    SEEN.append(retriever)
    # Ingested once per run and shared by the suite's tests.
    assert SEEN[0] is SEEN[-1]
    print("STORE:", type(retriever.store).__name__, getattr(retriever.store, "path", None))
    print("INGEST:", retriever.last_ingest)
"""


@pytest.fixture(scope="module", autouse=True)
def _preload():
    """Load torch, MiniLM and the stores' libraries outside the inner runs (they cannot be imported twice)."""
    from pytest_llmops.models import minilm
    from pytest_llmops.retrieval.stores.chroma_store import import_chromadb
    from pytest_llmops.retrieval.stores.faiss_store import import_faiss

    minilm.get_embedder()
    import_faiss()
    import_chromadb()


def write_suite(pytester: pytest.Pytester) -> None:
    suite = pytester.mkdir("suite")
    corpus = suite / "corpus"
    corpus.mkdir()
    for name, text in CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (suite / "conftest.py").write_text(SUITE_CONFTEST, encoding="utf-8")
    (suite / "test_suite.py").write_text(SUITE_TESTS, encoding="utf-8")


@pytest.mark.parametrize("kind", ["numpy", "faiss", "chroma"])
def test_a_suite_retriever_on_the_store_chosen_on_the_command_line(pytester, kind):
    write_suite(pytester)

    result = pytester.runpytest("-p", "no:cacheprovider", "-s", f"--llmops-retrieval-store={kind}")

    result.assert_outcomes(passed=2)
    expected = {"numpy": "NumpyStore None", "faiss": "FaissStore", "chroma": "ChromaStore"}[kind]
    result.stdout.fnmatch_lines([f"*STORE: {expected}*", "INGEST: IngestReport(added=6, *"])
    stores = pytester.path / ".llmops" / "retrieval"
    if kind != "numpy":
        (folder,) = [p for p in stores.iterdir() if p.is_dir()]
        assert folder.name.startswith(f"corpus-{kind}-")
    assert (stores / "embeddings.sqlite").is_file()


def test_a_second_run_reuses_the_saved_store_and_embeds_nothing(pytester):
    write_suite(pytester)
    pytester.makeini("[pytest]\nllmops_retrieval_store = faiss\n")

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*STORE: FaissStore*", "INGEST: IngestReport(added=0, updated=0, removed=0, unchanged=6, embedded=0)"])


def test_a_bad_store_option_stops_the_run_naming_the_flag(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")

    result = pytester.runpytest("--llmops-retrieval-store=pinecone")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        ("*--llmops-retrieval-store: expected one of numpy, faiss, faiss-hnsw, chroma or "
         "an import path package.module:factory, got 'pinecone'*"),
    ])


def test_a_bad_store_in_the_ini_file_names_the_ini_value(pytester):
    pytester.makeini("[pytest]\nllmops_retrieval_store = weaviate\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*llmops_retrieval_store in *tox.ini*got 'weaviate'. Example: --llmops-retrieval-store=chroma*"])


def test_the_options_are_in_the_help(pytester):
    result = pytester.runpytest("--help")

    result.stdout.fnmatch_lines(["*--llmops-embedder=EMBEDDER*", "*--llmops-retrieval-store=RETRIEVAL_STORE*"])


def test_a_retriever_without_a_corpus_fails_with_the_fix(pytester):
    pytester.makepyfile("async def test_search(retriever):\n    await retriever.search('anything')\n")

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        ("*CorpusError: the retriever fixture has no corpus: override the retrieval_config "
         "fixture in your suite's conftest.py*"),
    ])


def test_an_empty_corpus_fails_naming_the_folder(pytester):
    pytester.mkdir("docs")
    pytester.makeini("[pytest]\nllmops_retrieval_corpus = docs\n")
    pytester.makepyfile("def test_search(retriever):\n    pass\n")

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CorpusError: corpus */docs is empty: it holds no documents*"])


def test_a_store_path_that_is_not_a_store_fails_naming_it(pytester):
    write_suite(pytester)
    (pytester.path / "suite" / "conftest.py").write_text(
        SUITE_CONFTEST.replace('k=2)', 'k=2, store="chroma", path=Path(__file__).with_name("corpus"))'),
        encoding="utf-8",
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*StoreError: */suite/corpus is not a Chroma store (no chroma.sqlite3)*empty or new folder*"])
