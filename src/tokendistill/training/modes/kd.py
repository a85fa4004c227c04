"""kd: plain fine-tuning plus the KL term to the teacher's label-token distribution, no words (logit
distillation, as TRL's GKD with no on-policy data, or DistillKit's logit distillation).

Loss: alpha x label loss + kd_weight x KL, the weights multitask_kd gives these two terms (alpha 0.5 and 1.0 by
default), so that kd and multitask_kd differ only by multitask_kd's (1 - alpha) x words: the pair separates what the
teacher's answer distribution brings from what its words bring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokendistill.tasks.base import Example
from tokendistill.training.modes.base import MODES, RationaleSource, TrainingRow
from tokendistill.training.modes.multitask_kd import KDConfig, answer_distiller, with_example
from tokendistill.training.modes.paper import Standard

if TYPE_CHECKING:
    import torch

    from tokendistill.training.distill import AnswerDistiller


@dataclass(frozen=True)
class Distillation(Standard):
    """Input -> gold label, the label rows carrying their example for the teacher."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        return [with_example(row, example) for row in super().rows(example, rationale)]

    def signal(self, config: KDConfig, student_tokenizer: Any,  # type: ignore[override]
               device: torch.device) -> AnswerDistiller:
        return answer_distiller(config, student_tokenizer, device, label_scale=config.alpha)


MODES.register("kd")(Distillation("kd", RationaleSource.NONE, predict_prefix="", needs_teacher=True,
                                          config=KDConfig))
