"""Training: students learn labels and, in multitask modes, the teacher's rationale words."""

from tokendistill.training.modes import MODES, Mode, TrainingRow
from tokendistill.training.trainer import train

__all__ = ["MODES", "Mode", "TrainingRow", "train"]
