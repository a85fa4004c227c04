"""multitask_kd: the paper's multitask, plus the KL term to the teacher's label-token distribution (beyond the
paper; teacher and student share a vocabulary). Loss: alpha x label + (1 - alpha) x words + kd_weight x KL."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokendistill.config import TrainConfig
from tokendistill.options import option
from tokendistill.tasks.base import Example
from tokendistill.training.modes.base import LABEL, MODES, PREDICT_PREFIX, RationaleSource, TrainingRow
from tokendistill.training.modes.paper import Multitask

if TYPE_CHECKING:
    import torch

    from tokendistill.training.distill import AnswerDistiller


@dataclass(kw_only=True)
class KDConfig(TrainConfig):
    """The options of the modes that match the teacher's answer distribution (kd, multitask_kd)."""

    teacher: str = option(dataclasses.MISSING, "the teacher (same vocabulary as the student) whose answer "
                                               "distribution the student matches")
    kd_weight: float = option(1.0, "weight of the KL term, added to the mode's other losses", minimum=0)
    kd_temperature: float = option(1.0, "softmax temperature of both distributions (the KL is scaled by its square)",
                                   above=0)

    def other_models(self) -> dict[str, str]:
        return {"teacher": self.teacher}


def with_example(row: TrainingRow, example: Example) -> TrainingRow:
    """A label row that carries its example, so that the KL term can show it to the teacher."""
    return TrainingRow(row.source, row.target, LABEL, example)


def answer_distiller(config: KDConfig, student_tokenizer: Any, device: torch.device,
                     label_scale: float) -> AnswerDistiller:
    from tokendistill.training.distill import AnswerDistiller  # loads torch models: only when a run needs it

    return AnswerDistiller(config.teacher, student_tokenizer, config.max_input_length,
                           config.kd_temperature, device, weight=config.kd_weight, label_scale=label_scale,
                           trust_remote_code=config.trust_remote_code)


@dataclass(frozen=True)
class MultitaskDistillation(Multitask):
    """Multitask, plus a KL term pulling the student's distribution over each label token towards the
    teacher's. The multitask loss keeps its alpha weighting; the KL term is added with --kd-weight."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        label, *rest = super().rows(example, rationale)
        return [with_example(label, example), *rest]

    def signal(self, config: KDConfig, student_tokenizer: Any,  # type: ignore[override]
               device: torch.device) -> AnswerDistiller:
        return answer_distiller(config, student_tokenizer, device, label_scale=1.0)


MODES.register("multitask_kd")(MultitaskDistillation("multitask_kd", RationaleSource.TEACHER_WORDS, PREDICT_PREFIX,
                                                     needs_teacher=True, config=KDConfig))
