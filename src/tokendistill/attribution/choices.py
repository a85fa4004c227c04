"""Scoring a closed set of candidate answers by the teacher's log-probability.

A small teacher's free generation is often poor (off-format, rambling) while it still ranks the candidates
sensibly; scoring each candidate answers multiple-choice and classification tasks without parsing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from tokendistill.attribution.teacher import Teacher
from tokendistill.errors import UserError
from tokendistill.tasks.base import Example

Scoring = Literal["sum", "mean"]


@dataclass(frozen=True)
class ChoiceScores:
    """Per example: each candidate's summed log-probability and its token count."""

    candidates: list[tuple[str, ...]]
    log_prob_sums: list[np.ndarray]
    token_counts: list[np.ndarray]

    def scores(self, scoring: Scoring) -> list[np.ndarray]:
        if scoring == "sum":
            return self.log_prob_sums
        return [sums / np.maximum(counts, 1) for sums, counts in zip(self.log_prob_sums, self.token_counts)]

    def best(self, scoring: Scoring) -> list[str]:
        """The candidate with the highest score; ties go to the earlier candidate."""
        return [choices[int(np.argmax(values))] for choices, values in zip(self.candidates, self.scores(scoring))]


def candidates_of(example: Example, task_name: str) -> tuple[str, ...]:
    if not example.choices:
        raise UserError(
            f"task {task_name!r} has no closed set of answers to score; use --target teacher or --target gold"
        )
    return example.choices


@torch.no_grad()
def score_choices(teacher: Teacher, examples: Sequence[Example], task_name: str, max_rows: int = 64) -> ChoiceScores:
    """log p(candidate | input) for every candidate of every example, ``max_rows`` (example, candidate) rows
    per forward pass."""
    candidates = [candidates_of(example, task_name) for example in examples]
    pairs = [(row, choice) for row, choices in enumerate(candidates) for choice in choices]
    sums = np.zeros(len(pairs))
    counts = np.zeros(len(pairs))
    for start in range(0, len(pairs), max_rows):
        chunk = pairs[start : start + max_rows]
        batch = teacher.encode([examples[row] for row, _ in chunk], [choice for _, choice in chunk])
        log_probs = teacher.answer_log_prob(teacher.embed(batch.input_ids), batch.attention_mask, batch)
        sums[start : start + len(chunk)] = log_probs.float().cpu().numpy()
        counts[start : start + len(chunk)] = batch.answer_mask.sum(dim=1).cpu().numpy()
    split_points = np.cumsum([len(choices) for choices in candidates])[:-1]
    return ChoiceScores(candidates, np.split(sums, split_points), np.split(counts, split_points))
