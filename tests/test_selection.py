"""The one candidate-word filter and top-k choice that extraction, re-selection, analysis and faithfulness share."""

import numpy as np
import pytest

from tokendistill.selection import candidate_flags, is_candidate, resolve_k, select_top_k
from tokendistill.tasks.base import TEMPLATE


def test_template_words_are_never_candidates_and_the_flags_drop_what_they_name() -> None:
    assert not is_candidate("Premise", TEMPLATE)
    assert not is_candidate(",", "input") and is_candidate(",", "input", drop_punctuation=False)
    assert is_candidate("The", "input") and not is_candidate("The", "input", drop_stopwords=True)
    assert is_candidate("C-3PO", "input", drop_punctuation=True)  # has letters: not punctuation
    assert candidate_flags(["a", "cat", "."], ["input"] * 3, drop_stopwords=True).tolist() == [False, True, False]


def test_k_is_a_count_or_a_fraction_of_the_candidates() -> None:
    assert resolve_k(3, 10) == 3 and resolve_k(3, 2) == 2
    assert resolve_k(0.25, 10) == 2 and resolve_k(0.01, 10) == 1 and resolve_k(0.5, 0) == 0
    for wrong in (0, -1, 2.5):
        with pytest.raises(ValueError):
            resolve_k(wrong, 10)


def test_top_k_takes_the_best_candidates_in_input_order_and_ties_go_to_the_earlier_word() -> None:
    scores = np.array([0.5, 0.9, np.nan, 0.9, 0.1, 0.8])
    candidates = np.array([True, True, True, True, True, False])
    assert select_top_k(scores, candidates, 2).tolist() == [1, 3]  # the tie at 0.9, both kept, in order
    assert select_top_k(scores, candidates, 1).tolist() == [1]  # the earlier of the tied words
    assert select_top_k(scores, candidates, 3).tolist() == [0, 1, 3]  # not the NaN, not the non-candidate
    assert select_top_k(scores, candidates, 10).tolist() == [0, 1, 3, 4]
