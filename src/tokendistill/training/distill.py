"""The KL term of the distillation modes (kd, multitask_kd): it pulls the student's label-token distributions
towards the teacher's.

Beyond the paper. The teacher's full distribution at each gold-label position says more than the label alone
(how sure it is, which wrong labels it finds close); matching it needs one vocabulary for both models, so
this checks that first. The teacher runs beside the student, frozen, on the same examples in the prompt format
it had during extraction; its distributions are recomputed each step rather than stored, because a stored
(tokens x vocabulary) table per example would be larger than the training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tokendistill.attribution.teacher import Teacher, TeacherBatch
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.training.data import EncodedRows, RowLosses
from tokendistill.training.modes.base import TrainingRow


def check_shared_vocabulary(teacher_tokenizer: object, student_tokenizer: object, teacher_name: str) -> None:
    teacher_vocab = teacher_tokenizer.get_vocab()  # type: ignore[attr-defined]
    student_vocab = student_tokenizer.get_vocab()  # type: ignore[attr-defined]
    if teacher_vocab != student_vocab:
        shared = len(teacher_vocab.keys() & student_vocab.keys())
        raise UserError(
            f"distillation (kd, multitask_kd) needs a teacher with the student's vocabulary: {teacher_name} has {len(teacher_vocab)} "
            f"tokens, the student {len(student_vocab)} ({shared} shared); pick a student of the teacher's family "
            "or use --mode multitask or standard (no teacher)"
        )


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Summed KL(teacher || student) over N token positions, each (N, V), times temperature² (Hinton et al.
    2015: keeps the gradient scale independent of the temperature)."""
    teacher_log_probs = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student_log_probs = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    per_token = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=-1)
    return per_token.sum() * temperature**2


@dataclass
class DistillationPlan:
    """Which student logits meet which teacher logits, for the label rows of one micro-batch."""

    teacher_batch: TeacherBatch | None
    rows: list[int]  # the micro-batch rows with at least one aligned token
    teacher_rows: list[int]  # their rows in the teacher batch
    lengths: list[int]  # per such row: aligned tokens (the first of its target tokens)

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


class AnswerDistiller:
    """The KL term as a mode's training signal (``modes.base.Signal``): ``weight`` x the summed KL over the step's
    aligned tokens / their count, added to ``label_scale`` x the rows' loss."""

    name = "kd_loss"

    def __init__(self, teacher_path: str, student_tokenizer: object, max_input_length: int, temperature: float,
                 device: torch.device, weight: float = 1.0, label_scale: float = 1.0,
                 trust_remote_code: bool = False) -> None:
        self.weight, self.label_scale = weight, label_scale
        if temperature <= 0:
            raise UserError(f"--kd-temperature must be positive, got {temperature}")
        loaded = load_model(teacher_path, device=str(device), offsets=True, trust_remote_code=trust_remote_code)
        check_shared_vocabulary(loaded.tokenizer, student_tokenizer, teacher_path)
        self.teacher = Teacher(loaded, max_input_length=max_input_length)
        self.temperature = temperature
        # Embedding matrices are often padded past the tokenizer: compare over the real tokens only.
        self.vocabulary = len(student_tokenizer)  # type: ignore[arg-type]

    def plan(self, rows: Sequence[TrainingRow], encoded: EncodedRows, is_encoder_decoder: bool) -> DistillationPlan:
        """Align each label row's student target tokens with the teacher's answer tokens (their common prefix:
        a decoder student ends its answer with EOS where a decoder teacher does not)."""
        indices = [i for i, row in enumerate(rows) if row.example is not None]
        if not indices:
            return DistillationPlan(None, [], [], [])
        examples = [rows[i].example for i in indices]
        batch = self.teacher.encode(examples, [example.target for example in examples])  # type: ignore[union-attr]
        kept, lengths = [], []
        for batch_row, row in enumerate(indices):
            # The student's target ids in any layout (two rows or one shared-prompt sequence).
            student_ids = encoded.target_ids(row, is_encoder_decoder)
            teacher_ids = batch.answer_ids[batch_row, : int(batch.answer_mask[batch_row].sum())].tolist()
            length = 0
            while length < min(len(student_ids), len(teacher_ids)) and student_ids[length] == teacher_ids[length]:
                length += 1
            if length:
                kept.append(batch_row)
                lengths.append(length)
        if not kept:
            return DistillationPlan(None, [], [], [])
        return DistillationPlan(batch, [indices[i] for i in kept], kept, lengths)

    def tokens(self, plan: DistillationPlan) -> int:
        return plan.tokens

    def loss_sum(self, plan: DistillationPlan, student: RowLosses, model: object = None) -> Tensor:
        """Summed KL over the plan's aligned tokens, from the student's losses of the whole micro-batch."""
        if not plan.rows or plan.teacher_batch is None:
            return student.logits.sum() * 0
        batch = plan.teacher_batch
        with torch.no_grad():
            embeds = self.teacher.embed(batch.input_ids)
            teacher_logits = self.teacher.answer_logits(embeds, batch.attention_mask, batch)
        student_parts, teacher_parts = [], []
        for row, teacher_row, length in zip(plan.rows, plan.teacher_rows, plan.lengths):
            student_parts.append(student.first(row, length))
            teacher_parts.append(teacher_logits[teacher_row, :length])
        return distillation_loss(
            torch.cat(student_parts)[:, : self.vocabulary],
            torch.cat(teacher_parts)[:, : self.vocabulary],
            self.temperature,
        )
