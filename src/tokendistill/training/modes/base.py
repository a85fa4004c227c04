"""What a training mode is: the rows an example gives, the loss group each row feeds, the prefix the student sees at
test time, and any training signal beyond the rows' token losses (a KL term to a teacher's distribution) with the
models it loads. The trainer calls these hooks and knows no mode by name, so a mode is one module (the built-in ones
are in this package; a user's own registers itself in ``MODES`` from anywhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from tokendistill.config import TrainConfig
from tokendistill.options import ConfigVariants
from tokendistill.registry import Registry

# The prompt's text and the marker layouts are the student's (student.py), re-exported for the modes.
from tokendistill.student import (  # noqa: F401
    EXPLAIN_CUE,
    EXPLAIN_PREFIX,
    PREDICT_PREFIX,
    answer_part,
    marker_after_input,
    marker_to_decoder,
)
from tokendistill.tasks.base import Example

if TYPE_CHECKING:
    import torch
    from torch import Tensor


class LossGroup(str, Enum):
    """Which loss a training row feeds: alpha x label loss + (1 - alpha) x rationale loss."""

    LABEL = "label"
    RATIONALE = "rationale"

    def __str__(self) -> str:  # "label", in file names, logs and f-strings alike (not "LossGroup.LABEL")
        return self.value

    __format__ = str.__format__


class RationaleSource(str, Enum):
    """What a mode's explanation rows learn from."""

    NONE = "none"
    TEACHER_WORDS = "teacher words"  # the teacher's top-k words, from `extract`
    LLM = "llm"  # the LLM rationales of the Distilling step-by-step data


LABEL, RATIONALE = LossGroup.LABEL, LossGroup.RATIONALE


@dataclass(frozen=True)
class TrainingRow:
    source: str
    target: str
    group: LossGroup
    # The example itself, where the teacher must see it too (multitask_kd's label rows).
    example: Example | None = None
    # Teacher-forced start of a seq2seq target that takes no loss (the task marker with --task-marker decoder).
    decoder_prompt: str = ""
    # Decoder students: the cue between the input and the target ("" means the answer's, tasks.base.ANSWER_CUE).
    cue: str = ""
    # --task-marker shared_prompt: the example's rows go into one sequence that reads the input once.
    shared_prompt: bool = False


class Signal(Protocol):
    """A loss term a mode adds to its rows' token losses: per forward pass, ``plan`` says which rows it reads,
    ``tokens`` how many positions it sums over (added up over the step's passes and processes, as the token losses
    are), ``loss_sum`` the term summed over them. The step's loss is then
    ``label_scale * rows' loss + weight * sum / tokens``. ``loss_sum`` gets the pass's row losses and the model (the
    Hugging Face model under any wrapper), for a term that needs a forward pass of its own."""

    name: str  # its key in the training log, e.g. "kd_loss"
    weight: float
    label_scale: float

    # ``encoded``: the pass's training.data.EncodedRows; ``losses``: its training.data.RowLosses (typed loosely: the
    # data module imports this one).
    def plan(self, rows: Sequence[TrainingRow], encoded: Any, is_encoder_decoder: bool) -> Any: ...

    def tokens(self, plan: Any) -> int: ...

    def loss_sum(self, plan: Any, losses: Any, model: Any) -> Tensor: ...


@dataclass(frozen=True)
class Mode:
    name: str
    rationale_source: RationaleSource
    predict_prefix: str
    needs_teacher: bool = False  # the teacher runs beside the student during training
    # Where the student writes more than the label (label, separator, words), the label ends here.
    answer_separator: str | None = None
    # The fields of each rationale record its rows need beyond the words (the training set's records are read
    # lazily and only these kept: a record's per-word scores are most of its size).
    record_fields: tuple[str, ...] = ()
    # Its options: TrainConfig, or a subclass that adds the options only this mode takes (kd's teacher and weights).
    config: type[TrainConfig] = TrainConfig

    @property
    def needs_rationales(self) -> bool:
        return self.rationale_source is RationaleSource.TEACHER_WORDS

    @property
    def needs_llm_rationales(self) -> bool:
        return self.rationale_source is RationaleSource.LLM

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        raise NotImplementedError

    def problem(self, config: TrainConfig) -> str | None:
        """What is wrong with ``config`` for this mode, checked before anything loads (None: nothing)."""
        if not isinstance(config, self.config):
            return (f"mode {self.name!r} takes its options as a {self.config.__name__} (from the Python API: "
                    f"tokendistill.{self.config.__name__}(...)), got a {type(config).__name__}")
        return None

    def signal(self, config: TrainConfig, student_tokenizer: Any, device: torch.device) -> Signal | None:
        """The mode's loss term beyond its rows' token losses, with the models it needs loaded (None: none).
        Called before the output folder is cleared, so that a model that fails to load costs nothing."""
        return None


MODES: Registry[Mode] = Registry("training mode")
# `train`'s options: the mode chosen picks the config class (flags of other modes are refused in one line).
TRAIN_CONFIGS: ConfigVariants[TrainConfig] = ConfigVariants(TrainConfig, "mode", lambda name: MODES.get(name).config,
                                                            MODES.names)


def train_config(values: dict[str, Any]) -> TrainConfig:
    """The typed options of a training run from a mapping, its class chosen by its mode."""
    return TRAIN_CONFIGS.build(values)


def rationale_text(record: Mapping[str, Any]) -> str:
    """The teacher's words joined by spaces, in input order: the ``explain:`` target."""
    return " ".join(record.get("rationale", []))
