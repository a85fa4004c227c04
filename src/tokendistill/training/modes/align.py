"""align: the teacher's attributions as a loss on the student's own (beyond the paper; for BERT classifiers with
integrated gradients, AD-KD, Wu et al. 2023). The student learns the label as in `standard`, and its input-gradient
saliency of the label's log-probability, merged into the same words as the teacher's records and normalised, is
pulled toward the teacher's stored word scores: weight x (1 - cosine) between the two normalised word-score
vectors, by a double backward. Teacher and student meet at words, so any teacher tokenizer works.

Loss: label loss + align_weight x mean over the step's examples of (1 - cos(student words, teacher words)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import Word, candidate_mask, token_word_pairs
from tokendistill.config import TrainConfig
from tokendistill.options import option
from tokendistill.tasks.base import ANSWER_CUE, Example
from tokendistill.training.modes.base import LABEL, MODES, RationaleSource, TrainingRow
from tokendistill.training.modes.paper import Standard

# What each example carries for the signal (its meta): the teacher's words, their spans, roles and scores.
TEACHER_WORDS = "teacher_words"
# Keeps the norm's gradient finite where a token's input gradient is zero (padding): d|g|/dg = g / |g|.
_EPSILON = 1e-12


@dataclass(kw_only=True)
class AlignConfig(TrainConfig):
    """align's options."""

    align_weight: float = option(1.0, "weight of the distance between the student's word saliency and the teacher's, "
                                      "added to the label loss", minimum=0)


class StudentAttribution(Teacher):
    """The student seen through the teacher's interface (encode, embed, log p(label | input)), left trainable:
    Teacher freezes the model it wraps, which a student in training must not be."""

    def __init__(self, model: Any, tokenizer: Any, is_encoder_decoder: bool, max_input_length: int) -> None:
        self.model, self.tokenizer, self.is_encoder_decoder = model, tokenizer, is_encoder_decoder
        self.name, self.max_input_length = "student", max_input_length
        # The label row's prompt, as `standard` trains it: the plain input, then (decoder students) the answer cue.
        self.prompt_prefix, self.prompt_suffix = "", "" if is_encoder_decoder else ANSWER_CUE


def word_saliency(token_scores: Tensor, offsets: np.ndarray, words: Sequence[Word]) -> Tensor:
    """(W,) word scores as the sum of their tokens' scores, differentiable (attribution.words merges in numpy)."""
    tokens, indices = token_word_pairs(offsets, words)
    merged = token_scores.new_zeros(len(words))
    if len(tokens):
        merged = merged.index_add(0, torch.from_numpy(indices).to(token_scores.device),
                                  token_scores[torch.from_numpy(tokens).to(token_scores.device)])
    return merged


def alignment(student: Tensor, teacher: Tensor) -> Tensor:
    """1 - cosine between the two normalised word-score vectors: 0 when the student's saliency is the teacher's
    (up to scale), 1 when they share no word."""
    student = student / student.sum().clamp_min(_EPSILON)
    teacher = teacher / teacher.sum().clamp_min(_EPSILON)
    return 1 - torch.nn.functional.cosine_similarity(student, teacher, dim=0, eps=_EPSILON)


@dataclass
class AlignPlan:
    rows: list[int]  # the pass's label rows whose example carries the teacher's words
    examples: list[Example]


class SaliencyAlignment:
    """The alignment term as a mode's signal (modes.base.Signal)."""

    name = "align_loss"
    label_scale = 1.0

    def __init__(self, tokenizer: Any, max_input_length: int, weight: float) -> None:
        self.tokenizer, self.max_input_length, self.weight = tokenizer, max_input_length, weight

    def plan(self, rows: Sequence[TrainingRow], encoded: Any, is_encoder_decoder: bool) -> AlignPlan:
        chosen = [i for i, row in enumerate(rows) if row.example is not None and TEACHER_WORDS in row.example.meta]
        return AlignPlan(chosen, [rows[i].example for i in chosen])  # type: ignore[misc]

    def tokens(self, plan: AlignPlan) -> int:
        return len(plan.rows)

    def loss_sum(self, plan: AlignPlan, losses: Any, model: Any) -> Tensor:
        """Summed over the plan's examples: the student's saliency (a forward, and a backward that keeps its
        graph) against the teacher's word scores."""
        if not plan.examples:
            return losses.logits.sum() * 0
        scorer = StudentAttribution(model, self.tokenizer, model.config.is_encoder_decoder, self.max_input_length)
        return self.terms(scorer, plan.examples).sum()

    def terms(self, scorer: StudentAttribution, examples: Sequence[Example]) -> Tensor:
        """(E,): each example's alignment term, differentiable w.r.t. the student's weights."""
        batch = scorer.encode(examples, [example.target for example in examples])
        embeds = scorer.embed(batch.input_ids).detach().requires_grad_(True)
        # The math kernel of scaled-dot-product attention: the fused CPU and flash kernels have no derivative of
        # their backward, which the double backward takes.
        with sdpa_kernel(SDPBackend.MATH):
            log_prob = scorer.answer_log_prob(embeds, batch.attention_mask, batch)
            (gradient,) = torch.autograd.grad(log_prob.sum(), embeds, create_graph=True)
        token_scores = (gradient.float().pow(2).sum(dim=-1) + _EPSILON).sqrt() * batch.attention_mask
        terms = []
        for row, example in enumerate(examples):
            record = example.meta[TEACHER_WORDS]
            words = [Word(text, start, end, role) for text, (start, end), role in
                     zip(record["words"], record["word_spans"], record["word_roles"])]
            scores = np.array([np.nan if s is None else s for s in record["word_scores"]], dtype=np.float64)
            # The words both sides score: the teacher's candidates (no template, no punctuation) it reached.
            kept = candidate_mask(words) & ~np.isnan(scores)
            student = word_saliency(token_scores[row], batch.offsets[row], words)[torch.from_numpy(kept)]
            teacher = torch.tensor(scores[kept], dtype=student.dtype, device=student.device)
            terms.append(alignment(student, teacher) if kept.any() else student.sum() * 0)
        return torch.stack(terms)


@dataclass(frozen=True)
class Align(Standard):
    """Input -> gold label (the label rows carrying their example, with the teacher's word scores)."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        words = {name: (rationale or {}).get(name) for name in self.record_fields}
        if all(value is not None for value in words.values()):
            example = replace(example, meta={**example.meta, TEACHER_WORDS: words})
        return [TrainingRow(row.source, row.target, LABEL, example) for row in super().rows(example, rationale)]

    def signal(self, config: AlignConfig, student_tokenizer: Any,  # type: ignore[override]
               device: torch.device) -> SaliencyAlignment:
        return SaliencyAlignment(student_tokenizer, config.max_input_length, config.align_weight)


MODES.register("align")(Align("align", RationaleSource.TEACHER_WORDS, predict_prefix="",
                              record_fields=("words", "word_spans", "word_roles", "word_scores"), config=AlignConfig))
