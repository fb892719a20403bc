"""BLEU, chrF and TER through sacrebleu, sentence level and corpus level.

Scores are on sacrebleu's 0-100 scale and equal what sacrebleu prints for
the same options; the signature is sacrebleu's own (``nrefs:1|case:mixed|
eff:yes|tok:13a|smooth:exp|version:2.6.0``) prefixed with the metric name.
Sentence-level BLEU uses ``effective_order=True``, as sacrebleu advises for
single sentences; corpus BLEU uses sacrebleu's corpus defaults.

Only tokenizers that run offline are accepted: sacrebleu's ``flores101``,
``flores200``, ``spBLEU-1K`` and ``spm`` download a SentencePiece model.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pytest_llmops.metrics._deps import require
from pytest_llmops.metrics._inputs import as_references, as_text, blank_reference_reason, check_number
from pytest_llmops.verdict import Score

Kind = Literal["bleu", "chrf", "ter"]
KINDS: tuple[str, ...] = ("bleu", "chrf", "ter")

#: sacrebleu tokenizers that need a download (or a tokenizer library) at first use.
DOWNLOADING_TOKENIZERS = frozenset({"flores101", "flores200", "spBLEU-1K", "spm"})

#: The options each metric accepts, with sacrebleu's defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "bleu": {"lowercase": False, "tokenize": "13a", "smooth_method": "exp", "smooth_value": None, "max_ngram_order": 4},
    "chrf": {
        "char_order": 6,
        "word_order": 0,
        "beta": 2,
        "lowercase": False,
        "whitespace": False,
        "eps_smoothing": False,
    },
    "ter": {"normalized": False, "no_punct": False, "asian_support": False, "case_sensitive": False},
}

_lock = threading.Lock()


def normalize_options(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """sacrebleu options for ``kind`` with defaults filled in; unknown names are an error."""
    if kind not in OPTIONS:
        raise ValueError(f"unknown sacrebleu metric {kind!r}; choose one of {', '.join(KINDS)}")
    allowed = OPTIONS[kind]
    unknown = set(options) - set(allowed)
    if unknown:
        raise TypeError(f"{kind} got unknown option(s) {sorted(unknown)}; it accepts: {', '.join(allowed)}")
    merged = {**allowed, **options}
    if kind == "bleu" and merged["tokenize"] in DOWNLOADING_TOKENIZERS:
        raise ValueError(
            f"tokenize={merged['tokenize']!r} downloads a SentencePiece model at first use, which pytest-llmops "
            "does not do; use '13a' (default), 'intl', 'char', 'zh' or 'none'"
        )
    return merged


class Prepared:
    """A sacrebleu metric object for one kind, level and set of options, with its signatures.

    Built once per configuration and reused, so a per-case score pays only
    for the metric itself (see benchmarks/metrics_overhead.py).
    """

    def __init__(self, kind: str, sentence: bool, options: Mapping[str, Any]) -> None:
        metrics = require("sacrebleu.metrics", "sacrebleu", purpose="BLEU, chrF and TER")
        self.kind = kind
        self.sentence = sentence
        self.options = dict(options)
        self.higher_is_better = kind != "ter"
        if kind == "bleu":
            self.metric = metrics.BLEU(effective_order=sentence, **options)
        elif kind == "chrf":
            self.metric = metrics.CHRF(**options)
        else:
            self.metric = metrics.TER(**options)
        self._signatures: dict[int | str, str] = {}

    def signature(self, nrefs: int | str) -> str:
        """sacrebleu's signature for ``nrefs`` references, prefixed with the metric and level."""
        text = self._signatures.get(nrefs)
        if text is None:
            # Signatures are built from the metric's attributes; num_refs is the
            # only one that scoring changes, and it is given explicitly here.
            sig = type(self.metric)._SIGNATURE_TYPE({**vars(self.metric), "num_refs": nrefs})
            text = f"metric:{self.kind}|level:{'sentence' if self.sentence else 'corpus'}|{sig.format()}"
            self._signatures[nrefs] = text
        return text


_prepared: dict[tuple[Any, ...], Prepared] = {}


def prepared(kind: str, *, sentence: bool, options: Mapping[str, Any]) -> Prepared:
    """The cached :class:`Prepared` for ``kind`` and the caller's (not yet normalized) ``options``."""
    key = (kind, sentence, *options.items())
    try:
        return _prepared[key]
    except KeyError:
        pass
    except TypeError as error:
        raise TypeError(f"{kind} options must be plain values (str, number, bool, None): {error}") from error
    opts = normalize_options(kind, options)
    with _lock:
        found = _prepared.get(key)
        if found is None:
            found = _prepared[key] = Prepared(kind, sentence, opts)
    return found


def _reason(kind: str, result: Any) -> str:
    if kind == "bleu":
        precisions = "/".join(map("{:.1f}".format, result.precisions))
        return (
            f"BLEU {result.score:.2f}: n-gram precisions {precisions},"
            f" brevity penalty {result.bp:.3f} (hyp_len {result.sys_len}, ref_len {result.ref_len})"
        )
    # sacrebleu's own summary: "chrF2 = 67.17", "TER = 16.67".
    return result.format(width=2)


def _details(kind: str, result: Any) -> dict[str, Any]:
    if kind == "bleu":
        return {
            "precisions": list(result.precisions),
            "bp": result.bp,
            "sys_len": result.sys_len,
            "ref_len": result.ref_len,
            "scale": "0-100",
        }
    if kind == "ter":
        return {"num_edits": result.num_edits, "ref_length": result.ref_length, "scale": "0-100"}
    return {"char_order": result.char_order, "word_order": result.word_order, "beta": result.beta, "scale": "0-100"}


def sentence_score(
    kind: Kind,
    hypothesis: str,
    references: str | Sequence[str],
    *,
    threshold: float | None = None,
    **options: Any,
) -> Score:
    """Sentence-level ``kind`` ("bleu", "chrf" or "ter") of ``hypothesis`` against ``references``.

    ``threshold`` is a minimum for BLEU and chrF and a maximum for TER.
    """
    if type(hypothesis) is not str:
        as_text(hypothesis, "hypothesis")
    refs = [references] if type(references) is str else list(as_references(references))
    if threshold is not None:
        threshold = check_number(threshold, "threshold", low=0.0)
    prep = prepared(kind, sentence=True, options=options)
    sig = prep.signature(len(refs))
    blank = blank_reference_reason(refs)
    if blank:
        return Score.unmeasured(kind, blank, signature=sig)
    result = prep.metric.sentence_score(hypothesis, refs)
    return Score.measured(
        kind,
        result.score,
        threshold=threshold,
        higher_is_better=prep.higher_is_better,
        reason=_reason(kind, result),
        signature=sig,
        details=_details(kind, result),
    )


def bleu(hypothesis: str, references: str | Sequence[str], *, threshold: float | None = None, **options: Any) -> Score:
    """Sentence BLEU (0-100, sacrebleu, effective order). Options: lowercase, tokenize, smooth_method, ..."""
    return sentence_score("bleu", hypothesis, references, threshold=threshold, **options)


def chrf(hypothesis: str, references: str | Sequence[str], *, threshold: float | None = None, **options: Any) -> Score:
    """Sentence chrF (0-100, sacrebleu). ``word_order=2`` gives chrF++."""
    return sentence_score("chrf", hypothesis, references, threshold=threshold, **options)


def ter(hypothesis: str, references: str | Sequence[str], *, threshold: float | None = None, **options: Any) -> Score:
    """Sentence TER (0-100+, lower is better; ``threshold`` is a maximum)."""
    return sentence_score("ter", hypothesis, references, threshold=threshold, **options)


def corpus_score(
    kind: Kind,
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    threshold: float | None = None,
    name: str | None = None,
    **options: Any,
) -> Score:
    """Corpus-level ``kind`` over aligned ``hypotheses`` and per-hypothesis ``references``.

    ``references[i]`` is the reference text, or the list of reference texts,
    of ``hypotheses[i]``; the number of references may vary between
    hypotheses (sacrebleu's variable-reference support).
    """
    hyps = [as_text(h, f"hypotheses[{i}]") for i, h in enumerate(hypotheses)]
    if len(hyps) != len(references):
        raise ValueError(
            f"{len(hyps)} hypotheses but {len(references)} reference entries; give one entry per hypothesis"
        )
    refs = [as_references(r, f"references[{i}]") for i, r in enumerate(references)]
    threshold = check_number(threshold, "threshold", low=0.0)
    prep = prepared(kind, sentence=False, options=options)
    counts = {len(r) for r in refs}
    nrefs: int | str = counts.pop() if len(counts) == 1 else "var"
    sig = prep.signature(nrefs)
    score_name = name or f"corpus_{kind}"
    if not hyps:
        return Score.unmeasured(score_name, "the corpus is empty: no hypotheses were collected", signature=sig)
    blank = [i for i, r in enumerate(refs) if blank_reference_reason(r)]
    if blank:
        return Score.unmeasured(
            score_name,
            f"{len(blank)} of {len(refs)} entries have only empty references (first: #{blank[0]}); fix the test data",
            signature=sig,
        )
    # sacrebleu wants reference *streams*: stream j holds every hypothesis' j-th
    # reference, None where a hypothesis has fewer.
    width = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(width)]
    result = prep.metric.corpus_score(hyps, streams)
    details = _details(kind, result)
    details["sentences"] = len(hyps)
    return Score.measured(
        score_name,
        result.score,
        threshold=threshold,
        higher_is_better=prep.higher_is_better,
        reason=f"{_reason(kind, result)} over {len(hyps)} sentences",
        signature=sig,
        details=details,
    )
