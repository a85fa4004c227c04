import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokendistill.attribution.words import (
    candidate_mask,
    merge_to_words,
    select_top_k,
    split_words,
    token_word_pairs,
)
from tokendistill.tasks import TEMPLATE, Example, Segment


def example_of(*segments: tuple[str, str]) -> Example:
    return Example("x", tuple(Segment(role, text) for role, text in segments), "y")


def test_split_words_keeps_contractions_numbers_and_unicode() -> None:
    words = split_words(example_of(("input", "Don't pay $3.50 for the café, naïve Zoë!")))
    assert [w.text for w in words] == ["Don't", "pay", "$", "3.50", "for", "the", "café", ",", "naïve", "Zoë", "!"]
    assert all(w.role == "input" for w in words)


def test_split_words_tags_template_roles() -> None:
    words = split_words(example_of(("question", "Why?"), (TEMPLATE, "\n(a) "), ("choice", "rain")))
    assert [(w.text, w.role) for w in words] == [
        ("Why", "question"), ("?", "question"), ("(", TEMPLATE), ("a", TEMPLATE), (")", TEMPLATE), ("rain", "choice"),
    ]


def test_subword_scores_merge_into_words_by_sum_and_max() -> None:
    words = split_words(example_of(("input", "unbelievable cats")))
    # "un" "believ" "able" " cats" "</s>"(special, empty span)
    offsets = np.array([[0, 2], [2, 8], [8, 12], [13, 17], [0, 0]])
    scores = np.array([1.0, 2.0, 3.0, 0.5, 9.0])
    np.testing.assert_allclose(merge_to_words(scores, offsets, words, "sum"), [6.0, 0.5])
    np.testing.assert_allclose(merge_to_words(scores, offsets, words, "max"), [3.0, 0.5])


def test_token_spanning_two_words_counts_for_both() -> None:
    words = split_words(example_of(("input", "(a) rain")))
    offsets = np.array([[0, 2], [2, 3], [4, 8]])  # "(a" crosses a word boundary
    tokens, word_index = token_word_pairs(offsets, words)
    assert list(zip(tokens.tolist(), word_index.tolist())) == [(0, 0), (0, 1), (1, 2), (2, 3)]


def test_words_cut_off_by_truncation_get_no_score() -> None:
    words = split_words(example_of(("input", "one two three")))
    scores = merge_to_words(np.array([1.0, 2.0]), np.array([[0, 3], [4, 7]]), words)
    assert scores[:2].tolist() == [1.0, 2.0] and np.isnan(scores[2])
    assert select_top_k(scores, np.ones(3, bool), 3).tolist() == [0, 1]


def test_top_k_keeps_input_order_and_breaks_ties_by_position() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.5])
    assert select_top_k(scores, np.ones(5, bool), 3).tolist() == [1, 2, 3]
    assert select_top_k(scores, np.array([1, 0, 1, 1, 1], bool), 2).tolist() == [2, 3]


def test_top_k_as_a_fraction_of_the_candidates() -> None:
    scores = np.arange(10, dtype=float)
    assert select_top_k(scores, np.ones(10, bool), 0.3).tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        select_top_k(scores, np.ones(10, bool), 2.5)


def test_candidates_exclude_template_punctuation_and_optionally_stopwords() -> None:
    words = split_words(example_of(("input", "the cat ,"), (TEMPLATE, " Answer")))
    assert candidate_mask(words).tolist() == [True, True, False, False]
    assert candidate_mask(words, drop_stopwords=True).tolist() == [False, True, False, False]


@given(st.text(max_size=200))
def test_word_spans_always_point_at_their_text(text: str) -> None:
    example = example_of(("input", text))
    for word in split_words(example):
        assert example.input[word.start : word.end] == word.text
        assert word.text.strip() == word.text and word.text
