"""Where the offline detector was validated, and whether an (answer, context) pair lies there.

The lexical detector measures surface support, so it can only judge answers
that keep close to their context's words: span-like QA answers and extractive
summaries. On abstractive text (paraphrases, LLM summaries) it flags nearly
every answer, right or wrong (held-out figures in ``models/offline.md``). So
each pair is first described by its *kind* (``TextKind``: length, share of the
answer's word pairs that the context lacks, how English it reads), and the
model's ``Competence`` (chosen by ``scripts/train_hallucination.py`` on the
training sources, checked on the held-out ones) says whether the detector's
verdict there is trustworthy. Outside it the check ends unmeasured with a
reason naming the judge-backed alternative, never a confident false alarm.

One exception, validated on short QA answers only: a short answer that adds
a number or a name its context lacks is measured even when it is otherwise
abstractive (an invented year is invented in any wording; on HaluEval no
right answer carried one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pytest_llmops.hallucination import text as T

if TYPE_CHECKING:
    from pytest_llmops.hallucination.features import ContextIndex

#: What to use where the offline detector declines; named in every such reason.
ALTERNATIVE = "use assert_faithful(answer, context=..., judge=...) with a judge"


@dataclass(frozen=True)
class TextKind:
    """What kind of text an answer is, relative to its context."""

    #: words in the answer
    words: int
    #: sentences in the answer
    sentences: int
    #: share of the answer's word pairs (stemmed, in order) that the context does not contain; 0 for a
    #: one-word answer. Extractive text scores near 0, abstractive summaries 0.3-0.7.
    novel_bigrams: float
    #: share of the answer's and context's words that are common English words (English prose: 0.3-0.6)
    english: float

    def as_dict(self) -> dict[str, float]:
        return {"words": self.words, "sentences": self.sentences, "novel_bigrams": round(self.novel_bigrams, 4),
                "english": round(self.english, 4)}


def novel_pairs(sentences: Sequence[str], context: ContextIndex) -> float:
    """Share of the word pairs (stemmed, in order, within each sentence) that ``context`` does not contain."""
    bigrams = [pair for sentence in sentences for pair in pairwise(T.all_stems(sentence))]
    return sum(pair not in context.bigrams for pair in bigrams) / len(bigrams) if bigrams else 0.0


def text_kind(sentences: Sequence[str], context: ContextIndex) -> TextKind:
    """The ``TextKind`` of an answer, given as its ``sentences``, against an indexed ``context``."""
    answer_words = [w for sentence in sentences for w in T.words(sentence)]
    every = answer_words + [w for sentence in context.sentences for w in T.words(sentence)]
    english = sum(w.lower() in T.STOPWORDS for w in every) / len(every) if every else 0.0
    return TextKind(len(answer_words), len(sentences), novel_pairs(sentences, context), english)


@dataclass(frozen=True)
class Competence:
    """The region where the detector's verdicts were validated (from the model's header).

    Inside: English text (``min_english``), at most ``max_words`` words in at
    most ``max_sentences`` sentences (the answer's probability is its worst
    sentence's, so its false-alarm rate grows with the number of sentences),
    and at most ``max_novel`` of the answer's word pairs absent from the context.
    A *short answer* (at most ``short_words`` words) that adds a number or a
    name the context lacks is inside at any novelty (``evidence_exception``).

    Inside the region, a sentence alone can fail an answer only if it is
    itself judgeable (``judges_sentence``): a sentence that rewords, in an
    answer that otherwise copies ("The answer is: Lyon."), ends the check
    unmeasured rather than failed.
    """

    short_words: int
    max_novel: float
    max_words: int
    max_sentences: int
    min_english: float
    evidence_exception: bool = True

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Competence:
        """Read ``header["competence"]``; a missing or malformed entry is a ``ValueError`` naming the key."""
        block = header.get("competence")
        if not isinstance(block, Mapping):
            raise ValueError("missing 'competence' (where the detector was validated)")
        try:
            competence = cls(
                short_words=int(block["short_words"]),
                max_novel=float(block["max_novel"]),
                max_words=int(block["max_words"]),
                max_sentences=int(block["max_sentences"]),
                min_english=float(block["min_english"]),
                evidence_exception=bool(block["evidence_exception"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"'competence' is malformed ({error!r})") from error
        if not (0.0 <= competence.max_novel <= 1.0 and 0.0 <= competence.min_english <= 1.0
                and 0 < competence.short_words <= competence.max_words and competence.max_sentences > 0):
            raise ValueError(f"'competence' has out-of-range values: {dict(block)}")
        return competence

    def as_dict(self) -> dict[str, Any]:
        return {"short_words": self.short_words, "max_novel": self.max_novel, "max_words": self.max_words,
                "max_sentences": self.max_sentences, "min_english": self.min_english, "evidence_exception": self.evidence_exception}

    def judges_sentence(self, novel: float, *, unsupported_facts: bool, answer_words: int) -> bool:
        """Whether one sentence (``novel``: its share of novel word pairs) may fail its answer by itself."""
        exception = self.evidence_exception and unsupported_facts and answer_words <= self.short_words
        return novel <= self.max_novel or exception

    def decline_failure(self, novel: Sequence[float]) -> str:
        """The reason when every sentence above the threshold rewords its context (``novel``: theirs)."""
        return (f"the only sentence(s) above the threshold reword the context (novel word pairs "
                f"{', '.join(f'{n:.2f}' for n in novel)}, validated up to {self.max_novel:.2f}), so they may be "
                f"right in other words; {ALTERNATIVE}")

    def decline(self, kind: TextKind, *, unsupported_facts: bool) -> str | None:
        """Why the detector must not judge an answer of this ``kind``; None when it may.

        ``unsupported_facts``: whether some answer sentence holds a number or
        name that the context lacks (the short-answer exception).
        """
        if kind.english < self.min_english:
            problem = (f"the text does not read as English (common English words {kind.english:.2f}, validated "
                       f"from {self.min_english:.2f}); the offline detector knows English only")
        elif kind.words > self.max_words:
            problem = (f"the answer is longer ({kind.words} words) than any grounded answer the offline detector "
                       f"was validated on ({self.max_words})")
        elif kind.sentences > self.max_sentences:
            problem = (f"the answer has more sentences ({kind.sentences}) than any grounded answer the offline "
                       f"detector was validated on ({self.max_sentences})")
        elif kind.novel_bigrams <= self.max_novel:
            return None
        elif self.evidence_exception and unsupported_facts and kind.words <= self.short_words:
            return None  # an invented number or name in a short answer is evidence in any wording
        else:
            what = "short answer" if kind.words <= self.short_words else "answer"
            problem = (f"the {what} is abstractive (novel word pairs {kind.novel_bigrams:.2f}, validated up to "
                       f"{self.max_novel:.2f}): it rewords its context, and the offline detector, which measures "
                       "word support, is not valid there")
        return f"{problem}; {ALTERNATIVE}"
