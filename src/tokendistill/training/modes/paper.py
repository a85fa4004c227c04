"""The modes of the paper and its baselines: plain fine-tuning, the paper's multitask on the teacher's words,
Distilling step-by-step on an LLM's rationales, and the label followed by the words in one target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokendistill.student import BASELINE_MODE
from tokendistill.tasks.base import Example
from tokendistill.training.modes.base import (
    EXPLAIN_PREFIX,
    LABEL,
    MODES,
    PREDICT_PREFIX,
    RATIONALE,
    Mode,
    RationaleSource,
    TrainingRow,
    rationale_text,
)


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


LABEL_THEN_TOKENS_SEPARATOR = " because:"


@dataclass(frozen=True)
class LabelThenTokens(Mode):
    """One target: the label, a separator, then the teacher's words (Wadhwa et al. 2024: a rationale after
    the label helps without any reasoning at test time; the label is read off before the separator)."""

    def rows(self, example: Example, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        words = rationale_text(rationale) if rationale else ""
        target = f"{example.target}{LABEL_THEN_TOKENS_SEPARATOR} {words}" if words else example.target
        return [TrainingRow(example.input, target, LABEL)]


WORDS, LLM = RationaleSource.TEACHER_WORDS, RationaleSource.LLM
MODES.register(BASELINE_MODE)(Standard(BASELINE_MODE, RationaleSource.NONE, predict_prefix=""))
MODES.register("multitask")(Multitask("multitask", WORDS, predict_prefix=PREDICT_PREFIX))
MODES.register("dss")(DistillingStepByStep("dss", LLM, predict_prefix=PREDICT_PREFIX))
MODES.register("label_then_tokens")(
    LabelThenTokens("label_then_tokens", WORDS, predict_prefix="", answer_separator=LABEL_THEN_TOKENS_SEPARATOR)
)
