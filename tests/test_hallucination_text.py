"""The surface evidence the hallucination detector compares: sentences, numbers, names, quotes.

These run without the embedding model (stdlib and nltk only).
"""

from __future__ import annotations

from pytest_llmops.hallucination import text as T
from pytest_llmops.hallucination.features import ContextIndex


def test_sentences_are_split_on_lines_and_sentence_ends_but_not_on_abbreviations():
    assert T.split_sentences("Dr. Smith joined the U.S. Army in 1990. He left in 1995!\nWhy?") == [
        "Dr. Smith joined the U.S. Army in 1990.",
        "He left in 1995!",
        "Why?",
    ]
    assert T.split_sentences("  \n ... \n") == []


def test_numbers_are_compared_after_normalising_their_format():
    assert [norm for _, norm in T.numbers("It cost $1,000.50 in 2019, five times more.")] == ["1000.5", "2019", "5"]
    context = T.number_set("Tickets were 1000.50 dollars; about 2 million people came in 2019. Five did not.")
    assert {"1000.5", "2000000", "2019", "5"} <= context


def test_one_in_an_answer_is_not_taken_for_a_count():
    assert T.numbers("One of the keepers stayed.", answer=True) == []


def test_months_are_dates_and_may_only_counts_when_capitalised():
    assert [norm for _, norm in T.numbers("It opened in March, as it may do.")] == ["march"]


def test_names_are_runs_of_capitalised_words_except_a_leading_stop_word():
    assert [n.text for n in T.names("The bridge was designed by Anna Kovacs for Ost City Council.")] == [
        "Anna Kovacs",
        "Ost City Council",
    ]
    assert T.names("all lower case text has no usable capitals like paris") == []


def test_a_context_index_knows_which_words_numbers_and_negations_it_holds():
    index = ContextIndex.build(["The museum opened in 1987.", "It is not open on Mondays."])
    assert index.sentences == ["The museum opened in 1987.", "It is not open on Mondays."]
    assert T.stem("opened") in index.stems and "1987" in index.numbers
    assert index.negated == [False, True]
