"""Controls: words chosen without the teacher's knowledge, to tell what its words carry from what any input words
do. ``random`` draws every word uniformly; ``random_matched`` (both registered in methods.py) keeps everything of the teacher's
choice but which words: per example, the same number of words from each input segment (premise / hypothesis,
question / choices), under the same candidate filter, at every rank, so that any k re-selected from the scores
differs from the teacher's top k only in which words of those segments it holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def rank_order(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The scored candidate words, best first; ties go to the earlier word (selection.select_top_k's order)."""
    eligible = np.flatnonzero(candidates & ~np.isnan(scores))
    return eligible[np.lexsort((eligible, -scores[eligible]))]


def matched_random_scores(scores: np.ndarray, roles: Sequence[str], candidates: np.ndarray,
                          example_id: str) -> np.ndarray:
    """Word scores whose ranking holds, at each rank, a random candidate word of the segment that the teacher's
    word of that rank came from (drawn without replacement, from a generator seeded by the example's id).

    Words outside the ranking (not candidates, or unscored) keep their score; they are never selected."""
    order = rank_order(scores, candidates)
    generator = np.random.default_rng(zlib.crc32(example_id.encode("utf-8")))
    pools: dict[str, list[int]] = {}
    for role in dict.fromkeys(roles[index] for index in order):  # each segment's words, shuffled once
        members = [int(index) for index in order if roles[index] == role]
        pools[role] = [members[i] for i in generator.permutation(len(members))]
    matched = scores.astype(np.float64).copy()
    for rank, index in enumerate(order):
        matched[pools[roles[index]].pop()] = float(len(order) - rank)
    return matched
