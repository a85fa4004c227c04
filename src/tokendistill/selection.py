"""Which words of an input may become rationale words, and the top k of them by score.

One filter for every stage that chooses or compares words (extraction, re-selection at a smaller k, the
analysis's baselines, the faithfulness control), so that they agree on what a candidate is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tokendistill.tasks.base import TEMPLATE

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"]
)



def is_punctuation(text: str) -> bool:
    return not any(character.isalnum() for character in text)


def is_candidate(text: str, role: str, drop_punctuation: bool = True, drop_stopwords: bool = False) -> bool:
    """A word that may be selected: not task template, and not filtered out."""
    return (role != TEMPLATE and not (drop_punctuation and is_punctuation(text))
            and not (drop_stopwords and text.lower() in STOPWORDS))


def candidate_flags(texts: Sequence[str], roles: Sequence[str], drop_punctuation: bool = True,
                    drop_stopwords: bool = False) -> np.ndarray:
    return np.array([is_candidate(text, role, drop_punctuation, drop_stopwords) for text, role in zip(texts, roles)],
                    dtype=bool)


def resolve_k(top_k: float, n_candidates: int, cap: int | None = None) -> int:
    """``top_k`` >= 1 is a count; 0 < top_k < 1 a fraction of the candidates (at least one word, at most ``cap``)."""
    if top_k <= 0:
        raise ValueError("top_k must be positive")
    if top_k < 1:
        return min(max(1, round(top_k * n_candidates)), cap or n_candidates) if n_candidates else 0
    if top_k != int(top_k):
        raise ValueError("top_k above 1 must be a whole number of words")
    return min(int(top_k), n_candidates)


def select_top_k(scores: np.ndarray, candidates: np.ndarray, top_k: float, cap: int | None = None) -> np.ndarray:
    """Indices of the k best candidate words, in input order; ties go to the earlier word."""
    eligible = np.flatnonzero(candidates & ~np.isnan(scores))
    k = resolve_k(top_k, len(eligible), cap)
    # lexsort sorts by the last key first: highest score, then earliest position.
    order = eligible[np.lexsort((eligible, -scores[eligible]))]
    return np.sort(order[:k])
