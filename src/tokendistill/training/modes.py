"""Training modes: how an example (and its rationale) becomes the student's training rows.

A mode is a small object: which rows an example gives, which loss group each row feeds, and the prefix the
student sees at test time. Adding a mode touches only this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from tokendistill.registry import Registry
from tokendistill.tasks.base import Example


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
PREDICT_PREFIX = "predict: "
EXPLAIN_PREFIX = "explain: "


@dataclass(frozen=True)
class TrainingRow:
    source: str
    target: str
    group: LossGroup
    # The example itself, where the teacher must see it too (multitask_kd's label rows).
    example: Example | None = None
    # Teacher-forced start of a seq2seq target that takes no loss (the task marker with --task-marker decoder).
    decoder_prompt: str = ""
    # Decoder students: the cue between the input and the target ("" means data.CAUSAL_CUE, "\nAnswer:").
    cue: str = ""
    # --task-marker shared_prompt: the example's rows go into one sequence that reads the input once.
    shared_prompt: bool = False


@dataclass(frozen=True)
class Mode:
    name: str
    rationale_source: RationaleSource
    predict_prefix: str
    needs_teacher: bool = False  # the teacher runs beside the student during training
    # Where the student writes more than the label (label, separator, words), the label ends here.
    answer_separator: str | None = None

    @property
    def needs_rationales(self) -> bool:
        return self.rationale_source is RationaleSource.TEACHER_WORDS

    @property
    def needs_llm_rationales(self) -> bool:
        return self.rationale_source is RationaleSource.LLM

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        raise NotImplementedError


MODES: Registry[Mode] = Registry("training mode")


def rationale_text(record: Mapping[str, Any]) -> str:
    """The teacher's words joined by spaces, in input order: the ``explain:`` target."""
    return " ".join(record.get("rationale", []))


@dataclass(frozen=True)
class Standard(Mode):
    """Input -> gold label: plain fine-tuning."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        return [TrainingRow(self.predict_prefix + example.input, example.target, LABEL)]


@dataclass(frozen=True)
class Multitask(Mode):
    """The paper's method: ``predict:`` input -> label and ``explain:`` input -> the teacher's top-k words."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        rows = [TrainingRow(self.predict_prefix + example.input, example.target, LABEL)]
        words = rationale_text(rationale) if rationale else ""
        if words:
            rows.append(TrainingRow(EXPLAIN_PREFIX + example.input, words, RATIONALE))
        return rows


@dataclass(frozen=True)
class DistillingStepByStep(Mode):
    """Hsieh et al. 2023: ``predict:`` -> label and ``explain:`` -> the LLM's chain-of-thought rationale."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        rows = [TrainingRow(self.predict_prefix + example.input, example.target, LABEL)]
        text = (rationale or {}).get("llm_rationale", "")
        if text:
            rows.append(TrainingRow(EXPLAIN_PREFIX + example.input, text, RATIONALE))
        return rows


@dataclass(frozen=True)
class MultitaskDistillation(Multitask):
    """Multitask, plus a KL term pulling the student's distribution over each label token towards the
    teacher's (beyond the paper; teacher and student must share a vocabulary). The label rows carry their
    example so that the trainer can show it to the teacher."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        label, *rest = super().rows(example, rationale)
        return [TrainingRow(label.source, label.target, LABEL, example), *rest]


LABEL_THEN_TOKENS_SEPARATOR = " because:"


@dataclass(frozen=True)
class LabelThenTokens(Mode):
    """One target: the label, a separator, then the teacher's words (Wadhwa et al. 2024: a rationale after
    the label helps without any reasoning at test time; the label is read off before the separator)."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        words = rationale_text(rationale) if rationale else ""
        target = f"{example.target}{LABEL_THEN_TOKENS_SEPARATOR} {words}" if words else example.target
        return [TrainingRow(example.input, target, LABEL)]


def marker_to_decoder(row: TrainingRow) -> TrainingRow:
    """The row with its task marker moved from the start of the input to the start of the output."""
    for prefix in (PREDICT_PREFIX, EXPLAIN_PREFIX):
        if row.source.startswith(prefix):
            return replace(row, source=row.source[len(prefix) :], decoder_prompt=prefix.strip())
    return row


# The explanation block's cue under --task-marker shared_prompt (the label block keeps "\nAnswer:").
EXPLAIN_CUE = "\nExplanation:"


def marker_after_input(row: TrainingRow, shared_prompt: bool = True) -> TrainingRow:
    """A decoder student's row with its task marker moved after the input: the label row reads
    ``input + "\nAnswer:"`` (exactly what evaluation prompts with), the explanation row
    ``input + "\nExplanation:"``; both start with the same tokens, which a packed sequence shares."""
    if row.source.startswith(EXPLAIN_PREFIX):
        return replace(row, source=row.source[len(EXPLAIN_PREFIX):], cue=EXPLAIN_CUE, shared_prompt=shared_prompt)
    if row.source.startswith(PREDICT_PREFIX):
        return replace(row, source=row.source[len(PREDICT_PREFIX):], shared_prompt=shared_prompt)
    return replace(row, shared_prompt=shared_prompt)


def answer_part(prediction: str, separator: str | None) -> str:
    """The label part of a prediction made by a mode that writes more after it."""
    return prediction.split(separator)[0].strip() if separator else prediction


WORDS, LLM = RationaleSource.TEACHER_WORDS, RationaleSource.LLM
MODES.register("standard")(Standard("standard", RationaleSource.NONE, predict_prefix=""))
MODES.register("multitask")(Multitask("multitask", WORDS, predict_prefix=PREDICT_PREFIX))
MODES.register("multitask_kd")(MultitaskDistillation("multitask_kd", WORDS, PREDICT_PREFIX, needs_teacher=True))
MODES.register("dss")(DistillingStepByStep("dss", LLM, predict_prefix=PREDICT_PREFIX))
MODES.register("label_then_tokens")(
    LabelThenTokens("label_then_tokens", WORDS, predict_prefix="", answer_separator=LABEL_THEN_TOKENS_SEPARATOR)
)
