"""A training run's setup, every part checked before (or as soon as) the models load: the inputs and their rows,
the task marker's layout and whether the student can pack it, the trackers, LoRA."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from tokendistill.config import TrainConfig
from tokendistill.errors import UserError
from tokendistill.models import refuse_remote_code
from tokendistill.student import TaskMarker, training_prompt
from tokendistill.tasks import Example, Task, get_task, load_examples, parse_split
from tokendistill.training.data import encode_rows, pass_loss
from tokendistill.training.modes.base import Mode, TrainingRow
from tokendistill.training.rows import build_rows
from tokendistill.training.validation import PeriodicEvaluation

log = logging.getLogger(__name__)


def training_inputs(config: TrainConfig) -> dict[str, str | None]:
    """Everything a training run reads from disk: its output may be none of these, nor inside or around one."""
    return {"student": config.student, **config.other_models(), "rationales": config.rationales,
            "data": config.data, "LLM rationales": config.llm_rationales}


def tracker_folder(output: Path) -> Path:
    """Where --report-to's trackers write: beside the student folder, never in it (the student folder is what a
    push uploads, and tracker events are no part of a model)."""
    return output.with_name(output.name + "-trackers")


def trackers(config: TrainConfig) -> list[Any]:
    """The accelerate trackers ``--report-to`` names (checked: known to accelerate and installed)."""
    if not config.report_to:
        return []
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    names = [name.strip().lower() for name in config.report_to.split(",") if name.strip()]
    installed = {str(getattr(t, "value", t)) for t in get_available_trackers()}
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise UserError(f"--report-to {name}: unknown tracker; accelerate knows {', '.join(LOGGER_TYPE_TO_CLASS)}")
        if name not in installed:
            raise UserError(f"--report-to {name}: not installed (pip install {name}); installed here: "
                            f"{', '.join(sorted(installed)) or 'none'}")
    return names


def read_inputs(config: TrainConfig, mode: Mode, state: Any, output: Path
                 ) -> tuple[Task, list[Example], list[list[TrainingRow]], int, PeriodicEvaluation | None]:
    """Every input the run reads, checked before any model loads: the examples, their training rows (in the
    task marker's layout), the examples per step, and the held-out scorer of --eval-every."""
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column,
                    free_text=config.free_text)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed, config.test_fraction,
                             config.valid_fraction)
    examples_per_step = min(config.batch_size, len(examples))
    if examples_per_step < state.num_processes * config.gradient_accumulation:
        raise UserError(
            f"--batch-size {examples_per_step} is too small for {state.num_processes} processes x "
            f"{config.gradient_accumulation} accumulation steps: every pass needs at least one example"
        )
    rows = build_rows(mode, examples, config)
    validator = None
    if config.keep_best and not config.eval_every:
        raise UserError("--keep-best keeps the best of the --eval-every scores: pass --eval-every N too")
    if config.keep_best and parse_split(config.eval_split)[0] == "test":
        raise UserError("--keep-best --eval-split test would choose the weights on the rows `evaluate` then reports "
                        "(a test score that was tuned on): score on held-out rows that are not the test rows, e.g. "
                        "--eval-split valid")
    if config.eval_every:
        if state.num_processes > 1:
            raise UserError("--eval-every runs in one process; train without accelerate launch, or evaluate after")
        marker = TaskMarker.of(config.task_marker)
        validator = PeriodicEvaluation(config, task, examples, training_prompt(
            mode.predict_prefix, mode.answer_separator, marker, is_encoder_decoder=False), output)
    return task, examples, TaskMarker.of(config.task_marker).layout(rows), examples_per_step, validator


PACKING_KERNELS = ("eager", "sdpa")


def packing_works(loaded: Any, rows: list[list[TrainingRow]], config: TrainConfig) -> bool:
    """Whether this student computes a packed sequence's loss as its separate rows' (checked on the first
    example with two rows): a kernel that cannot take a 4D mask (flash-attention) or a family that ignores
    it would be silently wrong, so it falls back to two rows, with a warning, instead."""
    kernel = getattr(loaded.model.config, "_attn_implementation", None)
    problem = None
    if kernel not in PACKING_KERNELS:
        problem = f"its attention kernel {kernel!r} takes no 4D mask (use attn_implementation eager or sdpa)"
    else:
        sample = next((example_rows for example_rows in rows if len(example_rows) > 1), None)
        if sample is None:
            return True
        device = next(loaded.model.parameters()).device
        separate = [replace(row, shared_prompt=False) for row in sample]
        was_training = loaded.model.training
        loaded.model.eval()
        with torch.no_grad():
            losses = [pass_loss(loaded.model, encode_rows(loaded.tokenizer, part, False, config.max_input_length,
                                                          config.max_target_length), device, False, 0.5)[2].row_loss
                      for part in (sample, separate)]
        loaded.model.train(was_training)
        if not torch.allclose(losses[0], losses[1], rtol=1e-3, atol=1e-4):
            problem = f"its packed loss differs from the two-row loss ({losses[0].tolist()} vs {losses[1].tolist()})"
    if problem:
        log.warning("--task-marker shared_prompt: %s; training with two rows per example instead (the same "
                    "model, without the speed-up)", problem)
        return False
    return True


def check_task_marker(mode: Mode, student: str, processes: int, marker: TaskMarker, trusted: bool = False) -> None:
    """Refuse, before any model loads, a layout that cannot train this mode on this student (TaskMarker.problem)."""
    from transformers import AutoConfig

    if marker.is_papers:
        return
    refuse_remote_code(student, trusted)
    try:
        is_encoder_decoder = AutoConfig.from_pretrained(student, trust_remote_code=trusted).is_encoder_decoder
    except (OSError, ValueError):  # not found or not a model: loading the student reports it, with what to do
        return
    if problem := marker.problem(mode.name, mode.predict_prefix, is_encoder_decoder, processes):
        raise UserError(problem)


def apply_lora(model: PreTrainedModel, config: TrainConfig, is_encoder_decoder: bool) -> PreTrainedModel:
    """Wrap the model in LoRA adapters (peft); only the adapters train."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets = [name.strip() for name in config.lora_targets.split(",")] if config.lora_targets else None
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=targets,
        task_type=TaskType.SEQ_2_SEQ_LM if is_encoder_decoder else TaskType.CAUSAL_LM,
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as error:
        raise UserError(f"cannot add LoRA adapters: {str(error).splitlines()[0]}; set --lora-targets") from None
