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

from tokendistill.selection import (  # noqa: F401  (re-exported: the selection is part of this stage's API)
    STOPWORDS,
    candidate_flags,
    is_punctuation,
    resolve_k,
    select_top_k,
)
from tokendistill.tasks.base import Example

# A word is made of grapheme clusters (\X: what a reader sees as one character): letters/digits with inner apostrophes
# or decimal points ("don't", "3.5"), or one other visible cluster. A cluster keeps its combining marks (Devanagari and
# Tamil vowel signs, Thai tone marks, a decomposed accent) and joiners, so "हिन्दी" stays one word, and an emoji with
# joiners, skin tones or variation selectors ("👩‍👩‍👧", "👍🏽", "❤️") or a flag ("🇩🇪") is one word of its own.
# Python's `re` has no \X, hence the `regex` module. \x1c-\x1f are whitespace to Python's str.split, not to
# Unicode's \s. Inputs reach this in NFC (tasks normalise them), so an NFD text gives the same words as its NFC twin.
WORD_PATTERN = regex.compile(r"(?:(?=[\w\p{M}])\X)+(?:['’.,](?:(?=[\w\p{M}])\X)+)*|(?=[^\w\s\x1c-\x1f])\X")
# A cluster of nothing but marks, joiners, variation selectors, emoji modifiers or tag characters (one left at the
# start of a text, or cut from its base): never a word by itself.
_NO_WORD = regex.compile(r"[\p{M}\p{Cf}\uFE00-\uFE0F\U0001F3FB-\U0001F3FF\U000E0020-\U000E007F]+")

Merge = Literal["sum", "max"]


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int
    role: str

    @property
    def is_punctuation(self) -> bool:
        return is_punctuation(self.text)

    @property
    def is_stopword(self) -> bool:
        return self.text.lower() in STOPWORDS


def split_words(example: Example) -> list[Word]:
    """The words of the example's input, each tagged with the role of the segment it sits in."""
    words: list[Word] = []
    for start, end, role in example.role_spans():
        text = example.input[start:end]
        for match in WORD_PATTERN.finditer(text):
            if not _NO_WORD.fullmatch(match.group()):
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
    return candidate_flags([w.text for w in words], [w.role for w in words], drop_punctuation, drop_stopwords)
