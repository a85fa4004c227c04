"""`tokendistill explain`: the teacher's answer to one input and the words it rests on, highlighted in the
terminal: a quick look at what `extract` would store for an example, before running it over a dataset."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, Literal

from tokendistill.attribution.extract import attribute_batch
from tokendistill.attribution.methods import METHODS
from tokendistill.attribution.teacher import Teacher
from tokendistill.config import ExtractConfig, device_problem, top_k_problem
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.options import option
from tokendistill.student import find_record
from tokendistill.tasks import Example, Segment, get_task


@dataclass(kw_only=True)
class ExplainConfig:
    input: str = option(dataclasses.MISSING, "one input, as the task formats it (a text task: the text itself)",
                        positional=True)
    teacher: str = option(dataclasses.MISSING, "teacher model: hub id, local folder or .gguf file")
    task: str = option("text", "task whose answers are scored (its labels are the choices of --target choice)",
                       registry="tasks")
    method: str = option("saliency", "attribution method", registry="methods")
    target: Literal["teacher", "choice"] = option("teacher", "attribute the teacher's generation or its best choice")
    top_k: float = option(5, "words to highlight", check=top_k_problem)
    max_new_tokens: int = option(16, "teacher generation length", minimum=1)
    max_input_length: int = option(512, "teacher input tokens", minimum=1)
    chat_template: bool = option(False, "wrap the input in the teacher's chat template (instruct models)")
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)


def explain(config: ExplainConfig) -> dict[str, Any]:
    """The record `extract` would write for this one input."""
    METHODS.get(config.method)
    if not config.input.strip():
        raise UserError("give a non-empty input")
    task = get_task(config.task)
    # A text task's labels come from its data; a teacher tokendistill fine-tuned recorded the ones it learned.
    record = find_record(config.teacher)
    learned = tuple(record.labels or ()) if record else ()
    choices = tuple(task.labels or learned)
    if config.target == "choice" and not choices:
        raise UserError(f"--target choice: task {config.task!r} has no fixed label set and the teacher recorded none; "
                        "use --target teacher")
    example = Example("input", (Segment("input", config.input),), "", choices)
    extract_config = ExtractConfig(task=config.task, teacher=config.teacher, output="-", method=config.method,
                                   target=config.target, top_k=config.top_k, max_new_tokens=config.max_new_tokens,
                                   max_input_length=config.max_input_length, chat_template=config.chat_template,
                                   device=config.device)
    teacher = Teacher(load_model(config.teacher, device=config.device, offsets=True), config.max_input_length,
                      None, config.chat_template)
    record = attribute_batch(teacher, task, [example], extract_config)[0]
    if record["attributed"] != config.target:  # no answer to attribute: extract would fall back to the gold one
        raise UserError("the teacher answered nothing for this input, so no words explain an answer; "
                        "try --target choice or a larger --max-new-tokens")
    return record


def highlighted(record: dict[str, Any], colour: bool) -> str:
    """The input with its rationale words marked: bold yellow in a terminal, [brackets] elsewhere."""
    text, chosen = record["input"], set(record["rationale_positions"])
    pieces, cursor = [], 0
    for index, (start, end) in enumerate(record["word_spans"]):
        pieces.append(text[cursor:start])
        word = text[start:end]
        pieces.append((f"\033[1;33m{word}\033[0m" if colour else f"[{word}]") if index in chosen else word)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def explain_command(config: ExplainConfig) -> str:
    record = explain(config)
    answer = record.get("teacher_answer") or "(nothing)"
    return (f"teacher's answer: {answer}\n{highlighted(record, sys.stdout.isatty())}\n"
            f"words: {' '.join(record['rationale'])}")
