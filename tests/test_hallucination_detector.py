"""``detect_hallucination``: examples of what it flags, what it lets through, and what it refuses.

These use the shipped model, which takes the lexical path (no embedding);
the embedding path's cache is checked with the real packaged MiniLM.
"""

from __future__ import annotations

import pytest

from pytest_llmops.hallucination import detect_hallucination

BRIDGE = (
    "The Kelvane Bridge crosses the river Ost. It is 340 metres long and carries two lanes of traffic. "
    "It was designed by Anna Kovacs and opened in 1962."
)


def test_an_answer_that_restates_the_context_is_not_flagged():
    report = detect_hallucination("The Kelvane Bridge is 340 metres long and carries two lanes of traffic.", BRIDGE)
    assert not report.hallucinated
    assert report.probability < report.threshold
    assert report.worst.unsupported == ()


def test_an_invented_number_is_flagged_and_named():
    report = detect_hallucination("The Kelvane Bridge is 410 metres long.", BRIDGE)
    assert report.hallucinated
    assert report.worst.unsupported_numbers == ("410",)


def test_an_invented_name_is_flagged_and_named():
    report = detect_hallucination("The bridge was designed by Gustave Eiffel.", BRIDGE)
    assert report.hallucinated
    assert "Gustave Eiffel" in report.worst.unsupported_names


def test_the_answer_is_as_hallucinated_as_its_worst_sentence():
    report = detect_hallucination(
        "The Kelvane Bridge crosses the river Ost. It was designed by Anna Kovacs. It cost 12 million euros.", BRIDGE
    )
    assert [s.text for s in report.flagged] == ["It cost 12 million euros."]
    assert report.probability == report.worst.probability
    assert report.worst.unsupported_numbers == ("12 million",)
    assert all(s.probability < report.threshold for s in report.sentences[:2])


def test_number_formats_and_words_are_normalised_before_comparing():
    context = "The library holds 40,000 books and five maps."
    assert detect_hallucination("It holds 40000 books and 5 maps.", context).worst.unsupported_numbers == ()
    assert detect_hallucination("It holds 40,000 books and 7 maps.", context).worst.unsupported_numbers == ("7",)


def test_retrieved_chunks_can_be_passed_as_a_list():
    chunks = ["Marrow Island has one lighthouse.", "Its first keeper was Tobias Wren, who served thirty years."]
    report = detect_hallucination("The first keeper was Tobias Wren.", chunks)
    assert not report.hallucinated
    assert report.worst.closest_context == chunks[1]


@pytest.mark.parametrize(
    ("answer", "context", "message"),
    [
        ("", BRIDGE, "the answer is empty"),
        (" ... ", BRIDGE, "the answer is empty"),
        ("It is 340 metres long.", "", "the context is empty"),
        ("It is 340 metres long.", ["", "  "], "the context is empty"),
    ],
)
def test_no_evidence_is_an_error_not_a_verdict(answer, context, message):
    with pytest.raises(ValueError, match=message):
        detect_hallucination(answer, context)


def test_wrong_types_are_named():
    with pytest.raises(TypeError, match=r"context\[1\] must be a str, got int"):
        detect_hallucination("An answer.", ["a chunk", 3])
    with pytest.raises(TypeError, match="answer must be a str, got NoneType"):
        detect_hallucination(None, BRIDGE)


def test_with_embeddings_on_context_sentences_are_embedded_once_per_process(monkeypatch):
    from pytest_llmops.hallucination import extract
    from pytest_llmops.models import minilm

    seen: list[str] = []
    real = minilm.embed
    monkeypatch.setattr(minilm, "embed", lambda texts: seen.extend(texts) or real(texts))
    context = "The ferry to Marrow Island leaves at nine. It returns at five."
    detect_hallucination("The ferry leaves at nine.", context, embeddings=True)
    detect_hallucination("The ferry returns at five.", context, embeddings=True)
    assert seen.count("The ferry to Marrow Island leaves at nine.") == 1
    assert len(extract._cache) <= extract.CACHE_SIZE
    seen.clear()
    detect_hallucination("The ferry leaves at ten.", context)  # the shipped model does not need it
    assert seen == []
