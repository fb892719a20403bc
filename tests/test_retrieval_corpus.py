"""Reading a corpus and chunking it: overlap, stable ids, metadata, and clear errors."""

from __future__ import annotations

import json

import pytest

from pytest_llmops.retrieval.corpus import (
    Chunking,
    Document,
    chunk_document,
    chunk_documents,
    load_chunks,
    load_documents,
)
from pytest_llmops.retrieval.errors import CorpusError

TEXT = "One is first. Two follows! Is three a question? Four ends it."


def test_sentence_chunks_share_the_overlap_and_keep_offsets():
    document = Document("notes", TEXT, {"lang": "en"})

    chunks = chunk_document(document, Chunking("sentences", size=2, overlap=1))

    assert [c.text for c in chunks] == [
        "One is first. Two follows!",
        "Two follows! Is three a question?",
        "Is three a question? Four ends it.",
    ]
    assert [c.id for c in chunks] == ["notes#0", "notes#1", "notes#2"]
    assert all(TEXT[c.start : c.end] == c.text for c in chunks)
    assert all(c.metadata == {"lang": "en"} and c.doc_id == "notes" for c in chunks)


def test_token_chunks_step_by_size_minus_overlap():
    document = Document("d", "a b c d e f g")

    chunks = chunk_document(document, Chunking("tokens", size=3, overlap=1))

    assert [c.text for c in chunks] == ["a b c", "c d e", "e f g"]


def test_without_overlap_the_last_chunk_takes_the_rest():
    chunks = chunk_document(Document("d", "a b c d e"), Chunking("tokens", size=2, overlap=0))

    assert [c.text for c in chunks] == ["a b", "c d", "e"]


def test_paragraphs_and_headings_end_sentences():
    text = "# Returns\n\nYou have 45 days\n\nRefunds take a week."

    chunks = chunk_document(Document("r", text), Chunking("sentences", size=1, overlap=0))

    assert [c.text for c in chunks] == ["# Returns", "You have 45 days", "Refunds take a week."]


def test_chunk_ids_and_fingerprints_are_stable_and_follow_the_text():
    first = chunk_document(Document("d", TEXT), Chunking("sentences", 2, 0))
    again = chunk_document(Document("d", TEXT), Chunking("sentences", 2, 0))
    edited = chunk_document(Document("d", TEXT.replace("Four", "Five")), Chunking("sentences", 2, 0))

    assert [(c.id, c.fingerprint) for c in first] == [(c.id, c.fingerprint) for c in again]
    assert first[0].fingerprint == edited[0].fingerprint
    assert first[1].id == edited[1].id and first[1].fingerprint != edited[1].fingerprint


def test_a_folder_corpus_reads_text_files_with_source_and_title(tmp_path):
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "setup.md").write_text("# Setting up\n\nPlug it in.", encoding="utf-8")
    (tmp_path / "faq.txt").write_text("Is it waterproof? No.", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("ignored", encoding="utf-8")

    documents = load_documents(tmp_path)

    assert [d.id for d in documents] == ["faq", "guides/setup"]
    assert documents[1].metadata == {"source": "guides/setup.md", "title": "Setting up"}


def test_a_jsonl_corpus_keeps_extra_fields_as_metadata(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        json.dumps({"id": "a", "text": "Alpha text.", "product": "x", "metadata": {"year": 2024}}) + "\n"
        + "\n# a comment line\n"
        + json.dumps({"id": 7, "text": "Seven."}) + "\n",
        encoding="utf-8",
    )

    documents = load_documents(corpus)

    assert [d.id for d in documents] == ["a", "7"]
    assert documents[0].metadata == {"product": "x", "year": 2024, "source": "docs.jsonl:1"}
    assert load_chunks(corpus)[0].id == "a#0"


def test_an_empty_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")

    with pytest.raises(CorpusError, match=r"corpus .* is empty.*\.md.*add documents"):
        load_documents(tmp_path)


def test_an_empty_jsonl_file_is_an_error(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n\n", encoding="utf-8")

    with pytest.raises(CorpusError, match="docs.jsonl is empty"):
        load_documents(corpus)


def test_a_missing_corpus_path_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match=r"nowhere does not exist; point the corpus setting"):
        load_documents(tmp_path / "nowhere")


def test_an_unreadable_document_names_the_file_and_the_fix(tmp_path):
    (tmp_path / "good.md").write_text("Fine.", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait.".encode("latin-1"))

    with pytest.raises(CorpusError) as raised:
        load_documents(tmp_path)

    message = str(raised.value)
    assert "latin1.txt" in message and "not UTF-8" in message and "convert it to UTF-8" in message


def test_an_empty_document_is_an_error_naming_it(tmp_path):
    (tmp_path / "blank.md").write_text("  \n", encoding="utf-8")

    with pytest.raises(CorpusError, match=r"blank\.md is empty; add its text or remove it"):
        load_documents(tmp_path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", r"docs.jsonl:2: not valid JSON"),
        ('{"text": "no id"}', r"docs.jsonl:2: a document needs an 'id'"),
        ('{"id": "b"}', r"docs.jsonl:2: document 'b' needs a non-empty 'text'"),
        ('{"id": "a", "text": "again"}', r"docs.jsonl:2: duplicate document id 'a' \(first on line 1\)"),
        ('["a list"]', r"docs.jsonl:2: expected a JSON object"),
    ],
)
def test_a_bad_jsonl_line_names_the_file_and_line(tmp_path, line, expected):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"id": "a", "text": "fine"}\n' + line + "\n", encoding="utf-8")

    with pytest.raises(CorpusError, match=expected):
        load_documents(corpus)


def test_two_files_with_the_same_id_are_an_error(tmp_path):
    (tmp_path / "faq.md").write_text("One.", encoding="utf-8")
    (tmp_path / "faq.txt").write_text("Two.", encoding="utf-8")

    with pytest.raises(CorpusError, match=r"both have the id 'faq'.*rename one"):
        load_documents(tmp_path)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"unit": "pages"}, "unit 'pages' is unknown"),
        ({"size": 0}, "size must be a whole number >= 1"),
        ({"size": 3, "overlap": 3}, "overlap must be a whole number from 0 to size-1"),
        ({"overlap": -1}, "overlap must be"),
    ],
)
def test_bad_chunking_settings_are_refused(options, expected):
    with pytest.raises(CorpusError, match=expected):
        Chunking(**options)


def test_chunking_no_documents_is_an_error():
    with pytest.raises(CorpusError, match="no text to chunk"):
        chunk_documents([])
