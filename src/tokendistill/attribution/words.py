"""From token scores to word scores to the top-k rationale words.

Rationales are words (text), never token ids, so teacher and student tokenizers stay independent: a token's
score goes to every word its character span overlaps (via the tokenizer's offsets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import regex

from tokendistill.tasks.base import TEMPLATE, Example

# A word: letters/digits with inner apostrophes or decimal points ("don't", "3.5"), or one other visible
# character. Combining marks (\p{M}: Devanagari and Tamil vowel signs, Thai tone marks, a decomposed accent)
# and the zero-width joiners belong to the word they sit in: Python's `re` counts them as non-word
# characters and cut "हिन्दी" into fragments, hence the `regex` module and its Unicode properties.
# \x1c-\x1f are whitespace to Python's str.split, not to Unicode's \s. Inputs reach this in NFC (tasks normalise them), so an NFD text gives the same words as its NFC twin.
WORD_PATTERN = regex.compile(r"[\w\p{M}\u200c\u200d]+(?:['’.,][\w\p{M}\u200c\u200d]+)*|[^\w\s\x1c-\x1f\p{M}]\p{M}*")

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"]
)

Merge = Literal["sum", "max"]


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int
    role: str

    @property
    def is_punctuation(self) -> bool:
        return not any(character.isalnum() for character in self.text)

    @property
    def is_stopword(self) -> bool:
        return self.text.lower() in STOPWORDS


def split_words(example: Example) -> list[Word]:
    """The words of the example's input, each tagged with the role of the segment it sits in."""
    words: list[Word] = []
    for start, end, role in example.role_spans():
        text = example.input[start:end]
        for match in WORD_PATTERN.finditer(text):
            words.append(Word(match.group(), start + match.start(), start + match.end(), role))
    return words


def token_word_pairs(offsets: np.ndarray, words: Sequence[Word]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (token index, word index) for every token whose character span overlaps a word.

    offsets: (T, 2) character spans from the tokenizer; special and padding tokens have empty spans.
    """
    if not words or len(offsets) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.fromiter((word.start for word in words), dtype=np.int64, count=len(words))
    ends = np.fromiter((word.end for word in words), dtype=np.int64, count=len(words))
    token_start, token_end = offsets[:, 0].astype(np.int64), offsets[:, 1].astype(np.int64)
    first = np.searchsorted(ends, token_start, side="right")  # first word ending after the token starts
    stop = np.searchsorted(starts, token_end, side="left")  # words starting before the token ends
    counts = np.where(token_end > token_start, np.maximum(stop - first, 0), 0)
    tokens = np.repeat(np.arange(len(offsets)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return tokens, np.repeat(first, counts) + within


def merge_to_words(
    token_scores: np.ndarray, offsets: np.ndarray, words: Sequence[Word], merge: Merge = "sum"
) -> np.ndarray:
    """Word scores (W,) from token scores (T,); a word no token reached (truncated input) gets NaN."""
    tokens, word_index = token_word_pairs(offsets, words)
    scores = np.full(len(words), np.nan)
    if len(tokens) == 0:
        return scores
    values = token_scores[tokens].astype(np.float64)
    if merge == "sum":
        totals = np.zeros(len(words))
        np.add.at(totals, word_index, values)
    elif merge == "max":
        totals = np.full(len(words), -np.inf)
        np.maximum.at(totals, word_index, values)
    else:
        raise ValueError(f"unknown merge {merge!r}; choose sum or max")
    reached = np.zeros(len(words), dtype=bool)
    reached[word_index] = True
    scores[reached] = totals[reached]
    return scores


def candidate_mask(words: Sequence[Word], drop_punctuation: bool = True, drop_stopwords: bool = False) -> np.ndarray:
    """Words that may be selected: not task template, and not filtered out."""
    return np.array(
        [
            word.role != TEMPLATE
            and not (drop_punctuation and word.is_punctuation)
            and not (drop_stopwords and word.is_stopword)
            for word in words
        ],
        dtype=bool,
    )


def resolve_k(top_k: float, n_candidates: int) -> int:
    """``top_k`` >= 1 is a count; 0 < top_k < 1 a fraction of the candidates (at least one word)."""
    if top_k <= 0:
        raise ValueError("top_k must be positive")
    if top_k < 1:
        return max(1, round(top_k * n_candidates)) if n_candidates else 0
    if top_k != int(top_k):
        raise ValueError("top_k above 1 must be a whole number of words")
    return min(int(top_k), n_candidates)


def select_top_k(scores: np.ndarray, candidates: np.ndarray, top_k: float) -> np.ndarray:
    """Indices of the k best candidate words, in input order; ties go to the earlier word."""
    eligible = np.flatnonzero(candidates & ~np.isnan(scores))
    k = resolve_k(top_k, len(eligible))
    # lexsort sorts by the last key first: highest score, then earliest position.
    order = eligible[np.lexsort((eligible, -scores[eligible]))]
    return np.sort(order[:k])
