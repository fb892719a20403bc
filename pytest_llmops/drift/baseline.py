"""Baselines on disk: the embeddings that "normal" looks like, and how they were made.

A baseline named ``support`` is two files in the baselines folder
(``.llmops/baselines/`` under the project root by default):

* ``support.npz``: the embeddings (``float32`` or ``float64``) and, when the
  baseline was built from texts, the texts as UTF-8 bytes plus offsets.
  Nothing in it needs pickle: it is read with ``allow_pickle=False``.
* ``support.json``: the metadata: embedder signature, dimension, count,
  creation time (UTC), source, package version and a SHA-256 of the vectors.

The JSON file is written last, so a baseline whose JSON exists is complete.
Comparing a sample with a baseline made by another embedder is refused
(:class:`EmbedderMismatchError`), since the two sets of vectors live in
different spaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pytest_llmops import statedir
from pytest_llmops.drift._deps import need, package_version
from pytest_llmops.drift.result import DriftInputError

if TYPE_CHECKING:
    import numpy

    from pytest_llmops.drift.embedders import Embedder

#: Version of the on-disk layout; bumped when it changes incompatibly.
FORMAT_VERSION = 1
#: Name of the project's state folder (cache, results, baselines) under its root.
STATE_DIR_NAME = ".llmops"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ROOT_MARKERS = ("pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg", ".git")


class BaselineError(DriftInputError):
    """A baseline is missing, malformed or cannot be written; the message names the file and the fix."""


def set_state_dir(path: str | os.PathLike[str] | None) -> None:
    """Make ``path`` the default state folder (the plugin sets ``<rootdir>/.llmops``); ``None`` resets."""
    statedir.set_state_dir(path)


def state_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The project's state folder.

    ``root`` wins when given. Otherwise the folder set by :func:`set_state_dir`
    (the pytest plugin sets ``<rootdir>/.llmops``); otherwise the nearest
    ``.llmops`` folder at or above the working directory, stopping at the
    project root (a folder with pyproject.toml, pytest.ini, tox.ini, setup.cfg
    or .git), whose ``.llmops`` is then used; otherwise ``./.llmops``.
    """
    if root is not None:
        return Path(root)
    configured = statedir.configured_state_dir()
    if configured is not None:
        return configured
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / STATE_DIR_NAME).is_dir() or any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder / STATE_DIR_NAME
    return cwd / STATE_DIR_NAME


def baselines_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Where baselines are kept: ``<state folder>/baselines``."""
    return state_dir(root) / "baselines"


@dataclass(frozen=True)
class BaselineInfo:
    """The metadata of a baseline (its JSON file)."""

    name: str
    embedder: str
    dim: int
    count: int
    created: str
    source: str = ""
    package_version: str = "unknown"
    text_field: str | None = None
    has_texts: bool = False
    dtype: str = "float32"
    sha256: str = ""
    format: int = FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "name": self.name,
            "embedder": self.embedder,
            "dim": self.dim,
            "count": self.count,
            "dtype": self.dtype,
            "created": self.created,
            "source": self.source,
            "package_version": self.package_version,
            "text_field": self.text_field,
            "has_texts": self.has_texts,
            "sha256": self.sha256,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True, eq=False)
class Baseline:
    """A loaded (or just saved) baseline: read-only embeddings, their texts if kept, and metadata."""

    info: BaselineInfo
    embeddings: numpy.ndarray
    texts: tuple[str, ...] | None = None
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def signature(self) -> str:
        """The signature of the embedder that made the vectors."""
        return self.info.embedder

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def __repr__(self) -> str:
        return (
            f"Baseline(name={self.name!r}, count={self.info.count}, dim={self.info.dim}, "
            f"embedder={self.info.embedder!r}, created={self.info.created!r})"
        )


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BaselineError(
            f"baseline name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. 'support-prompts-2024-06')"
        )
    return name


def _digest(vectors: numpy.ndarray) -> str:
    hasher = hashlib.sha256()
    hasher.update(f"{vectors.dtype.str}|{vectors.shape}".encode())
    hasher.update(vectors.tobytes(order="C"))
    return hasher.hexdigest()


def _pack_texts(texts: Sequence[str]) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Texts as one UTF-8 byte blob plus offsets: compact, and loadable without pickle."""
    np = need("numpy", "numpy", purpose="drift baselines")
    encoded = [text.encode("utf-8") for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(item) for item in encoded])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, offsets


def _unpack_texts(blob: numpy.ndarray, offsets: numpy.ndarray) -> tuple[str, ...]:
    data = blob.tobytes()
    return tuple(data[int(offsets[i]) : int(offsets[i + 1])].decode("utf-8") for i in range(len(offsets) - 1))


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_baseline(
    name: str,
    data: Any,
    *,
    embedder: Embedder | str | None = None,
    texts: Sequence[str] | None = None,
    source: str = "",
    text_field: str | None = None,
    root: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Baseline:
    """Save a baseline named ``name`` and return it.

    ``data`` is either a list of texts (embedded with ``embedder``, the MiniLM
    default when ``None``; the texts are kept for cluster explanations) or an
    array of embeddings, in which case ``embedder`` must say what made them
    (the embedder object or its signature string) and ``texts`` may give the
    texts behind the rows. ``source`` says where the data came from (a log
    file and window, a dataset); ``text_field`` which log field was embedded.
    An existing baseline is only replaced with ``overwrite=True``.
    """
    from pytest_llmops.drift.samples import as_sample

    np = need("numpy", "numpy", purpose="drift baselines")
    _check_name(name)
    signature = embedder if isinstance(embedder, str) else None
    sample = as_sample(data, embedder=None if signature else embedder, role="baseline")
    if sample.signature is None:
        if signature is None:
            raise BaselineError(
                f"save_baseline({name!r}, <array>): say which embedder made these vectors with "
                "embedder=<the embedder> or embedder='<its signature>', so later comparisons can check it"
            )
    elif signature is not None and signature != sample.signature:
        raise BaselineError(
            f"save_baseline({name!r}): embedder={signature!r} but the data carries {sample.signature!r}"
        )
    signature = signature or sample.signature
    kept_texts = sample.texts
    if texts is not None:
        kept_texts = tuple(texts)
        if len(kept_texts) != sample.size:
            raise BaselineError(f"save_baseline({name!r}): {len(kept_texts)} texts for {sample.size} vectors")
        for index, text in enumerate(kept_texts):
            if not isinstance(text, str):
                raise BaselineError(f"save_baseline({name!r}): texts[{index}] is a {type(text).__name__}, not a str")
    raw = np.asarray(sample.vectors)
    vectors = np.ascontiguousarray(raw, dtype=np.float32 if sample.dtype == "float32" else np.float64)

    folder = baselines_dir(root)
    npz_path, json_path = folder / f"{name}.npz", folder / f"{name}.json"
    if json_path.exists() and not overwrite:
        raise BaselineError(
            f"baseline {name!r} already exists at {json_path}; pass overwrite=True (CLI: --overwrite) "
            "to replace it, or choose another name"
        )
    info = BaselineInfo(
        name=name,
        embedder=str(signature),
        dim=int(vectors.shape[1]),
        count=int(vectors.shape[0]),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        source=source,
        package_version=package_version(),
        text_field=text_field,
        has_texts=kept_texts is not None,
        dtype=str(vectors.dtype),
        sha256=_digest(vectors),
        extra=extra or {},
    )
    arrays: dict[str, Any] = {"embeddings": vectors}
    if kept_texts is not None:
        arrays["text_bytes"], arrays["text_offsets"] = _pack_texts(kept_texts)
    _atomic_write(npz_path, lambda stream: np.savez_compressed(stream, **arrays))
    payload = json.dumps(info.to_dict(), indent=2, sort_keys=True).encode("utf-8") + b"\n"
    _atomic_write(json_path, lambda stream: stream.write(payload))
    vectors.setflags(write=False)
    return Baseline(info=info, embeddings=vectors, texts=kept_texts, path=npz_path)


def _paths_for(name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    text = os.fspath(name_or_path)
    candidate = Path(text)
    if _is_path(text):
        stem = candidate.with_suffix("") if candidate.suffix in (".npz", ".json") else candidate
        return Path(f"{stem}.npz"), Path(f"{stem}.json")
    _check_name(text)
    folder = baselines_dir(root)
    return folder / f"{text}.npz", folder / f"{text}.json"


def load_baseline(name_or_path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> Baseline:
    """Load a baseline by name (from the baselines folder) or by the path of its ``.npz`` or ``.json``.

    The vectors are checked against the metadata (count, dimension, SHA-256);
    any mismatch is a :class:`BaselineError` naming the file.
    """
    np = need("numpy", "numpy", purpose="drift baselines")
    npz_path, json_path = _paths_for(name_or_path, root)
    if not json_path.is_file():
        hint = ""
        if not _is_path(name_or_path):
            names = [info.name for info in list_baselines(root)]
            hint = f" Saved baselines: {', '.join(names)}." if names else f" {baselines_dir(root)} holds no baselines."
        raise BaselineError(
            f"no baseline {os.fspath(name_or_path)!r}: {json_path} does not exist.{hint} "
            "Create one with save_baseline(...) or `llmops drift save LOG --name NAME`."
        )
    info = _read_info(json_path)
    if not npz_path.is_file():
        raise BaselineError(
            f"baseline {info.name!r}: {json_path} exists but its vectors {npz_path} are missing; save it again"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            vectors = archive["embeddings"]
            texts = (
                _unpack_texts(archive["text_bytes"], archive["text_offsets"]) if "text_bytes" in archive.files else None
            )
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
        raise BaselineError(f"baseline {info.name!r}: cannot read {npz_path} ({error}); save it again") from error
    if vectors.ndim != 2 or vectors.shape != (info.count, info.dim):
        raise BaselineError(
            f"baseline {info.name!r}: {npz_path} holds vectors of shape {vectors.shape} but {json_path} "
            f"says {info.count} x {info.dim}; the files do not belong together, save the baseline again"
        )
    if info.sha256 and _digest(vectors) != info.sha256:
        raise BaselineError(
            f"baseline {info.name!r}: the vectors in {npz_path} do not match the checksum in {json_path} "
            "(changed or corrupted); save the baseline again"
        )
    if texts is not None and len(texts) != info.count:
        raise BaselineError(f"baseline {info.name!r}: {npz_path} holds {len(texts)} texts for {info.count} vectors")
    vectors.setflags(write=False)
    return Baseline(info=info, embeddings=vectors, texts=texts, path=npz_path)


def _is_path(name_or_path: str | os.PathLike[str]) -> bool:
    text = os.fspath(name_or_path)
    return "/" in text or os.sep in text or text.endswith((".npz", ".json"))


_REQUIRED = {"name": str, "embedder": str, "dim": int, "count": int, "created": str}


def _read_info(json_path: Path) -> BaselineInfo:
    try:
        raw = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"cannot read baseline metadata {json_path}: {error}") from error
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"{json_path}:{error.lineno}: not valid JSON ({error.msg}); save the baseline again"
        ) from error
    if not isinstance(raw, dict):
        raise BaselineError(f"{json_path}: expected a JSON object of baseline metadata")
    version = raw.get("format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise BaselineError(
            f"{json_path}: baseline format {version!r}, but this pytest-llmops reads format {FORMAT_VERSION}; "
            "save the baseline again with this version"
        )
    for key, kind in _REQUIRED.items():
        if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
            raise BaselineError(f"{json_path}: field {key!r} must be a {kind.__name__}, got {raw.get(key)!r}")
    known = {f for f in BaselineInfo.__dataclass_fields__}
    return BaselineInfo(**{k: v for k, v in raw.items() if k in known})


def list_baselines(root: str | os.PathLike[str] | None = None) -> list[BaselineInfo]:
    """The metadata of every baseline in the baselines folder, by name (unreadable ones are skipped)."""
    folder = baselines_dir(root)
    found = []
    for json_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(_read_info(json_path))
        except BaselineError:
            continue
    return found
