"""`tokendistill predict`: a trained student answers inputs given on the command line (or from Python), prompted
and read exactly as `evaluate` reads it, for a quick look without writing code."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tokendistill.config import device_problem
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.options import option
from tokendistill.student import load_record
from tokendistill.tasks import Example, Segment, Task
from tokendistill.training.answers import predict


@dataclass(kw_only=True)
class PredictConfig:
    inputs: list[str] = option(dataclasses.MISSING, "input text(s), as the task formats them (a text task: the "
                                                    "text itself)", positional=True)
    model: str = option(dataclasses.MISSING, "a student folder written by `tokendistill train`")
    answer: Literal["generation", "choice_sum", "choice_mean"] = option(
        "generation", "generation, or the label the student scores highest (its closed label set)")
    max_new_tokens: int = option(32, "generation length", minimum=1)
    max_input_length: int = option(512, "student input tokens", minimum=1)
    batch_size: int = option(16, "inputs per batch", minimum=1)
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)


def answer(model: str | Path, inputs: Sequence[str], answer_reading: str = "generation", max_new_tokens: int = 32,
           max_input_length: int = 512, batch_size: int = 16, device: str = "auto") -> list[str]:
    """The student's answer to each input, as `evaluate` would read it."""
    folder = Path(model)
    record = load_record(folder)
    if not inputs or not all(isinstance(text, str) and text.strip() for text in inputs):
        raise UserError("give one or more non-empty inputs")
    labels = tuple(record.labels or ())
    if answer_reading != "generation" and not labels:
        raise UserError(f"--answer {answer_reading}: {model} recorded no closed label set; use --answer generation")
    examples = [Example(f"input-{i}", (Segment("input", text),), "", labels) for i, text in enumerate(inputs)]
    loaded = load_model(str(folder), device=device, offsets=answer_reading != "generation")
    task = Task()  # the answers are not scored here; a plain task carries the examples
    task.name = record.task or "text"
    records, _ = predict(loaded, task, examples, record.prompt, batch_size, max_input_length, max_new_tokens,
                         answer=answer_reading)  # type: ignore[arg-type]
    return [record["prediction"] for record in records]


def predict_command(config: PredictConfig) -> list[str]:
    return answer(config.model, config.inputs, config.answer, config.max_new_tokens, config.max_input_length,
                  config.batch_size, config.device)
