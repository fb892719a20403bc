"""Documents and chunks: reading a corpus and cutting it into overlapping chunks.

A corpus is a folder of text files (``*.md``, ``*.markdown``, ``*.txt``,
``*.rst``, searched recursively) or a JSONL file with one document a line
(``{"id": ..., "text": ..., <any other field is metadata>}``).

Chunks have **stable ids**: ``<document id>#<n>``, ``n`` counting from 0 in the
document. Relevance labels name these ids, so they stay valid as long as the
document's text before the chunk is unchanged. Each chunk carries a
``fingerprint`` (hash of its text and metadata): re-ingesting a corpus
re-embeds only the chunks whose fingerprint changed.

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_llmops.retrieval.errors import CorpusError

#: File suffixes read from a corpus folder.
TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")
CHUNK_UNITS = ("sentences", "tokens")

# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) before whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_BLOCK_BREAK = re.compile(r"\n\s*\n")
_TOKEN = re.compile(r"\S+")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Document:
    """One document of a corpus: an id unique in the corpus, its text and metadata."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, the unit that is embedded, stored and retrieved.

    ``start``/``end`` are character offsets into the document's text.
    """

    id: str
    doc_id: str
    text: str
    index: int
    start: int = 0
    end: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    @property
    def fingerprint(self) -> str:
        """sha256 of the text and metadata: equal fingerprints need no re-ingestion."""
        payload = json.dumps(
            [self.text, self.doc_id, self.start, self.end, dict(self.metadata)],
            sort_keys=True, ensure_ascii=False, default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Chunking:
    """How documents are cut: ``size`` sentences (or whitespace tokens) a chunk,
    consecutive chunks sharing ``overlap`` of them."""

    unit: str = "sentences"
    size: int = 3
    overlap: int = 1

    def __post_init__(self) -> None:
        if self.unit not in CHUNK_UNITS:
            raise CorpusError(f"chunking unit {self.unit!r} is unknown; use one of: {', '.join(CHUNK_UNITS)}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise CorpusError(f"chunk size must be a whole number >= 1, got {self.size!r}")
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or not 0 <= self.overlap < self.size:
            raise CorpusError(
                f"chunk overlap must be a whole number from 0 to size-1 ({self.size - 1}), got {self.overlap!r}"
            )


# -- reading ---------------------------------------------------------------------------------


def load_documents(path: str | Path) -> list[Document]:
    """Read a corpus: a folder of text files or a JSONL file of documents.

    Raises :class:`CorpusError` naming the file (and line) for a missing path,
    an unreadable or empty document, a duplicate id, or a corpus with no documents.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus {path} does not exist; point the corpus setting at a folder or a .jsonl file")
    documents = _read_folder(path) if path.is_dir() else _read_jsonl(path)
    if not documents:
        raise CorpusError(
            f"corpus {path} is empty: it holds no documents "
            f"({'files ending in ' + ', '.join(TEXT_SUFFIXES) if path.is_dir() else 'JSON lines'}); "
            "add documents or point the corpus setting at the right place"
        )
    return documents


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"cannot read corpus document {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "convert it to UTF-8 or remove it from the corpus"
        ) from None
    except OSError as exc:
        raise CorpusError(
            f"cannot read corpus document {path}: {exc.strerror or exc}; fix its permissions or remove it"
        ) from None


def _title(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()
    return ""


def _read_folder(folder: Path) -> list[Document]:
    documents: list[Document] = []
    seen: dict[str, Path] = {}
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or file.suffix.lower() not in TEXT_SUFFIXES:
            continue
        if not file.is_file():
            continue
        doc_id = relative.with_suffix("").as_posix()
        if doc_id in seen:
            raise CorpusError(
                f"corpus documents {seen[doc_id]} and {file} both have the id {doc_id!r} "
                "(ids are paths without the suffix); rename one of them"
            )
        seen[doc_id] = file
        text = _read_text(file)
        if not text.strip():
            raise CorpusError(f"corpus document {file} is empty; add its text or remove it")
        documents.append(Document(doc_id, text, {"source": relative.as_posix(), "title": _title(text)}))
    return documents


def _read_jsonl(path: Path) -> list[Document]:
    text = _read_text(path)
    documents: list[Document] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                              'each line must be one object like {"id": "faq-1", "text": "..."}') from None
        if not isinstance(fields, dict):
            raise CorpusError(f"{where}: expected a JSON object with 'id' and 'text', got {type(fields).__name__}")
        doc_id, body = fields.pop("id", None), fields.pop("text", None)
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or str(doc_id).strip() == "":
            raise CorpusError(f"{where}: a document needs an 'id' (a non-empty string), got {doc_id!r}")
        if not isinstance(body, str) or not body.strip():
            raise CorpusError(f"{where}: document {doc_id!r} needs a non-empty 'text' string")
        doc_id = str(doc_id)
        if doc_id in seen:
            raise CorpusError(f"{where}: duplicate document id {doc_id!r} (first on line {seen[doc_id]})")
        seen[doc_id] = number
        extra = fields.pop("metadata", None)
        metadata = {**(extra if isinstance(extra, dict) else {}), **fields}
        metadata.setdefault("source", f"{path.name}:{number}")
        documents.append(Document(doc_id, body, metadata))
    return documents


# -- chunking --------------------------------------------------------------------------------


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; paragraph breaks and markdown lines end sentences too."""
    spans: list[tuple[int, int]] = []
    block_start = 0
    for block_end, next_start in [(m.start(), m.end()) for m in _BLOCK_BREAK.finditer(text)] + [(len(text), len(text))]:
        position = block_start
        for boundary in [*_SENTENCE_END.finditer(text, block_start, block_end)]:
            spans.append((position, boundary.start() + len(boundary.group().rstrip())))
            position = boundary.end()
        spans.append((position, block_end))
        block_start = next_start
    trimmed = []
    for start, end in spans:
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            trimmed.append((start + lead, start + len(piece.rstrip())))
    return trimmed


def _units(text: str, unit: str) -> list[tuple[int, int]]:
    if unit == "tokens":
        return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    return _sentence_spans(text)


def chunk_document(document: Document, chunking: Chunking = Chunking()) -> list[Chunk]:
    """Cut one document into chunks of ``chunking.size`` units with ``chunking.overlap`` shared."""
    spans = _units(document.text, chunking.unit)
    step = chunking.size - chunking.overlap
    chunks: list[Chunk] = []
    start_unit = 0
    while start_unit < len(spans):
        window = spans[start_unit : start_unit + chunking.size]
        start, end = window[0][0], window[-1][1]
        index = len(chunks)
        chunks.append(
            Chunk(f"{document.id}#{index}", document.id, document.text[start:end], index, start, end, document.metadata)
        )
        if start_unit + chunking.size >= len(spans):
            break
        start_unit += step
    return chunks


def chunk_documents(documents: Iterable[Document], chunking: Chunking = Chunking()) -> list[Chunk]:
    """Chunks of every document, in order; an empty corpus is a :class:`CorpusError`."""
    chunks = [chunk for document in documents for chunk in chunk_document(document, chunking)]
    if not chunks:
        raise CorpusError("the corpus has no text to chunk; add documents with text")
    return chunks


def load_chunks(path: str | Path, chunking: Chunking = Chunking()) -> list[Chunk]:
    """:func:`load_documents` then :func:`chunk_documents`."""
    return chunk_documents(load_documents(path), chunking)


def as_chunks(items: Sequence[Document | Chunk], chunking: Chunking = Chunking()) -> list[Chunk]:
    """Chunks from documents (chunked) or chunks (as they are)."""
    chunks: list[Chunk] = []
    for item in items:
        if isinstance(item, Chunk):
            chunks.append(item)
        elif isinstance(item, Document):
            chunks.extend(chunk_document(item, chunking))
        else:
            raise TypeError(f"expected Document or Chunk objects, got {type(item).__name__}")
    if not chunks:
        raise CorpusError("nothing to ingest: the corpus is empty; add documents with text")
    ids = [chunk.id for chunk in chunks]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise CorpusError(f"chunk id {duplicate!r} appears twice; document ids must be unique in a corpus")
    return chunks
