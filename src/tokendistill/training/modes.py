"""Training modes: how an example (and its rationale) becomes the student's training rows.

A mode is a small object: which rows an example gives, which loss group each row feeds, and the prefix the
student sees at test time. Adding a mode touches only this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokendistill.registry import Registry
from tokendistill.tasks.base import Example

LABEL = "label"
RATIONALE = "rationale"
PREDICT_PREFIX = "predict: "
EXPLAIN_PREFIX = "explain: "


@dataclass(frozen=True)
class TrainingRow:
    source: str
    target: str
    group: str  # LABEL or RATIONALE: which loss the row feeds


@dataclass(frozen=True)
class Mode:
    name: str
    needs_rationales: bool
    predict_prefix: str

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
        rows = [TrainingRow(PREDICT_PREFIX + example.input, example.target, LABEL)]
        words = rationale_text(rationale) if rationale else ""
        if words:
            rows.append(TrainingRow(EXPLAIN_PREFIX + example.input, words, RATIONALE))
        return rows


MODES.register("standard")(Standard("standard", needs_rationales=False, predict_prefix=""))
MODES.register("multitask")(Multitask("multitask", needs_rationales=True, predict_prefix=PREDICT_PREFIX))
