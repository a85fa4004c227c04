"""The training stage: a student learns from gold labels and, in multitask modes, the teacher's words.

A short loop over accelerate rather than the HF Trainer: multitask batches put the label rows and the
rationale rows of the same examples into one forward pass (DSS runs two) and weight the two losses, which
is one function here and a subclass plus a custom collator there. accelerate keeps the loop the same on one
CPU, one GPU (bf16) or many.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm
from transformers import get_scheduler

from tokendistill.artefacts import (
    BEST_WEIGHTS,
    CHECKPOINT,
    CHECKPOINT_INFO,
    TRAIN_IDS,
    TRAIN_INPUTS,
    TRAIN_LOG,
)
from tokendistill.card import COMMAND, write_card
from tokendistill.config import TrainConfig, write_config
from tokendistill.errors import UserError
from tokendistill.faults import crash_point
from tokendistill.folders import clear, locked, refuse_links, refuse_overlap, write_file
from tokendistill.models import load_model, resolve_device
from tokendistill.options import to_dict
from tokendistill.rationales import (
    summary_problems,
    write_json_atomic,
)
from tokendistill.runtime import process_state, seed_everything
from tokendistill.student import StudentRecord, TaskMarker, training_prompt
from tokendistill.tasks import Example, input_digest, materialized
from tokendistill.training.checkpoints import (
    CHECKPOINT_FORMAT,
    AlreadyTrained,
    input_fingerprints,
    prepare_output,
    rank_rng_state,
    restore_training_state,
    rng_state,
    run_identity,
    save_checkpoint,
    set_rng_state,
    sharded_checkpoint_problem,
    training_state,
)
from tokendistill.training.modes import MODES, Mode, Signal, TrainingRow
from tokendistill.training.rows import example_order
from tokendistill.training.setup import (
    apply_lora,
    check_task_marker,
    packing_works,
    read_inputs,
    tracker_folder,
    trackers,
    training_inputs,
)
from tokendistill.training.step import step_loss
from tokendistill.training.validation import PeriodicEvaluation

log = logging.getLogger(__name__)


def save_student(
    model: Any, tokenizer: Any, output: Path, merge_lora: bool, state_dict: dict[str, Any] | None = None
) -> None:
    """Weights and tokenizer loadable with plain ``from_pretrained``; LoRA adapters are merged in first.

    save_pretrained writes through whatever is at a file's path (a planted link included): it writes into a new
    folder of ours instead, whose files are then renamed into place (a link at their name is replaced, never
    followed)."""
    if merge_lora:
        model = model.merge_and_unload()
        state_dict = None
    # The student never saw a chat template (an instruct base model's would be left behind, and a user who
    # applied it would prompt the student in a format it was not trained on).
    if getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = None
    refuse_links(output)
    staging = Path(tempfile.mkdtemp(dir=output, prefix=".save-"))
    try:
        model.save_pretrained(staging, state_dict=state_dict)
        tokenizer.save_pretrained(staging)
        for entry in sorted(staging.iterdir()):
            target = output / entry.name
            if target.is_dir() and not target.is_symlink():
                raise UserError(f"{target} is a folder where the student's file {entry.name} goes; remove it")
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train a student and save it (weights, tokenizer, config) to ``config.output``; returns that folder.

    Resumes from the folder's checkpoint when it holds one of this configuration; a folder that holds the
    finished run is returned as it is. The main process holds the folder's lock for the whole run.
    """
    config = materialized(config)  # in-memory rows (Python API) become a file named by their content
    mode = MODES.get(config.mode)
    if problem := mode.problem(config):
        raise UserError(problem)
    refuse_overlap(config.output, training_inputs(config))
    trackers(config)  # an unknown or missing tracker fails now, not after the model has loaded
    if mode.needs_rationales and config.rationales:
        for problem in summary_problems(config.rationales):
            if config.strict:
                raise UserError(f"{config.rationales}: {problem} (--strict)")
            log.warning("%s: %s", config.rationales, problem)
    state = process_state(config.device)
    with locked(config.output) if state.is_main_process else nullcontext():
        output = _train(config, mode, state, progress)
    if config.push_to_hub and state.is_main_process:
        from tokendistill.hub import PushConfig, push

        push(PushConfig(folder=str(output), repo_id=config.push_to_hub))
    return output


@dataclass
class _Run:
    """One training run's parts, as the recipe's steps hand them on."""

    config: TrainConfig
    mode: Mode
    output: Path
    identity: str
    fingerprints: dict[str, Any]
    device: torch.device
    accelerator: Accelerator
    loaded: Any
    rows: list[list[TrainingRow]]
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    signal: Signal | None = None
    validator: PeriodicEvaluation | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    first_step: int = 0
    thread_history: list[int] = field(default_factory=list)  # the thread count of each earlier session of the run


def _train(config: TrainConfig, mode: Mode, state: Any, progress: bool) -> Path:
    """The recipe: check the folder, read and check every input, then load, train, checkpoint and save."""
    output = Path(config.output)
    # The main process checks the folder first; the others then read what it left.
    checkpoint, to_clear, finished = None, False, False
    with state.main_process_first():
        try:
            checkpoint, to_clear = prepare_output(output, config)
        except AlreadyTrained:
            finished = True
    if finished:
        log.info("%s already holds this run's student; nothing to do", output)
        return output
    check_task_marker(mode, config.student, state.num_processes, TaskMarker.of(config.task_marker),
                      config.trust_remote_code)
    task, examples, rows, examples_per_step, validator = read_inputs(config, mode, state, output)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    accelerator = _accelerator(config, device, output)
    loaded = load_model(config.student, init=config.init, device="cpu", trust_remote_code=config.trust_remote_code)
    run = _Run(config, mode, output, run_identity(config), input_fingerprints(config), device, accelerator, loaded,
               rows, validator=validator)
    _prepare(run, state, checkpoint, clear_first=to_clear)
    elapsed = _steps(run, len(examples), examples_per_step, progress)
    return _save(run, task, examples, elapsed)


def _accelerator(config: TrainConfig, device: torch.device, output: Path) -> Accelerator:
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision="bf16" if device.type == "cuda" else "no",
                              log_with=trackers(config) or None, project_dir=str(tracker_folder(output)))
    sharding = [name for name in ("FSDP", "DEEPSPEED") if os.environ.get(f"ACCELERATE_USE_{name}", "").lower() == "true"]
    if sharding and accelerator.distributed_type.value not in sharding and accelerator.is_main_process:
        # accelerate enables FSDP and DeepSpeed on accelerators only; on CPU it runs plain data parallelism.
        log.warning("the accelerate config asks for %s, but on %s accelerate runs %s: every process holds the "
                    "whole model", sharding[0], device.type, accelerator.distributed_type.value)
    if problem := sharded_checkpoint_problem(accelerator.distributed_type.value, config.checkpoint_every):
        raise UserError(problem)
    return accelerator


def _prepare(run: _Run, state: Any, checkpoint: dict[str, Any] | None, clear_first: bool) -> None:
    """The model (LoRA, the rows' layout), the optimizer and schedule, prepared by accelerate, and a checkpoint's
    state restored into them; the folder is cleared (--overwrite) only now that every input has loaded."""
    config, accelerator, loaded = run.config, run.accelerator, run.loaded
    model = loaded.model
    if config.lora_rank > 0:
        model = apply_lora(model, config, loaded.is_encoder_decoder)
    if TaskMarker.of(config.task_marker) is TaskMarker.SHARED_PROMPT and not packing_works(loaded, run.rows, config):
        run.rows = [[replace(row, shared_prompt=False) for row in example_rows] for example_rows in run.rows]
    # The mode's own models (a KL term's teacher) load before anything is cleared: one that fails costs nothing.
    run.signal = run.mode.signal(config, loaded.tokenizer, accelerator.device)
    if clear_first and state.is_main_process:
        clear(run.output)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    run.scheduler = get_scheduler(
        config.lr_scheduler, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.steps
    )
    if accelerator.distributed_type.value == "FSDP":
        # T5 and BART keep their one embedding matrix in three modules (shared, encoder's and decoder's
        # embed_tokens): FSDP refuses a parameter in two of its groups. Their own setter makes it one module.
        loaded.model.set_input_embeddings(loaded.model.get_input_embeddings())
    run.model, run.optimizer = accelerator.prepare(model, optimizer)
    if checkpoint is not None:
        _resume(run, checkpoint, state)
    if config.report_to:
        log.info("experiment trackers (%s) write to %s", config.report_to, tracker_folder(run.output))
        accelerator.init_trackers(run.output.name, config={key: value for key, value in to_dict(config).items()
                                                           if isinstance(value, (int, float, str, bool))})


def _resume(run: _Run, checkpoint: dict[str, Any], state: Any) -> None:
    restore_training_state(run.accelerator, run.model, run.optimizer, checkpoint)  # under FSDP, into shards
    run.scheduler.load_state_dict(checkpoint["scheduler"])
    run.history = checkpoint["history"]
    if run.validator is not None:
        run.validator.resume(run.history)
    run.first_step = checkpoint["step"]
    set_rng_state(rank_rng_state(checkpoint, state.process_index, state.num_processes))
    log.info("resuming %s at step %d of %d", run.output, run.first_step, run.config.steps)
    # A checkpoint written before the history was kept has only its own session's count.
    older = [checkpoint["threads"]] if checkpoint.get("threads") else []
    run.thread_history = list(checkpoint.get("thread_history") or older)
    if checkpoint.get("threads") not in (None, torch.get_num_threads()):
        log.warning("resuming with %d threads a run checkpointed with %s: on CPU the result is then not "
                    "bit-identical to an uninterrupted run (docs/reliability.md)", torch.get_num_threads(),
                    checkpoint["threads"])


def _steps(run: _Run, example_count: int, examples_per_step: int, progress: bool) -> float:
    """The loop from the first step not yet taken; returns its seconds."""
    config, accelerator, history = run.config, run.accelerator, run.history
    order = example_order(example_count, config.seed, skip=run.first_step * examples_per_step)
    run.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bar = tqdm(range(run.first_step, config.steps), desc=f"train {run.mode.name}", disable=not progress,
               unit="step", initial=run.first_step, total=config.steps)
    rank, world = accelerator.process_index, accelerator.num_processes
    try:
        for step in bar:
            step_examples = [next(order) for _ in range(examples_per_step)]
            value, parts = step_loss(config, run.loaded, run.model, accelerator, run.signal, run.device,
                                      [row for index in step_examples[rank::world] for row in run.rows[index]])
            if not math.isfinite(value):
                raise UserError(
                    f"the training loss became {value} at step {step + 1}; lower --learning-rate "
                    "(the last checkpoint is kept; rerun with --overwrite to start over)"
                )
            if config.max_grad_norm:
                # The norm before clipping, as HF's Trainer logs it: how often the clip bites shows in the log.
                parts["grad_norm"] = float(accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm))
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            history.append({"step": step + 1, "loss": value, **parts})
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)  # the step's own loss, shown with the bar's tick
            done = step + 1
            if run.validator is not None and run.validator.due(done):
                history[-1]["eval_accuracy"] = run.validator.run(run.loaded, run.model, done)
            if accelerator.trackers:
                accelerator.log({**{k: v for k, v in history[-1].items() if k != "step"},
                                 "learning_rate": run.scheduler.get_last_lr()[0]}, step=done)
            if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
                _checkpoint(run, done)
            crash_point("train.after_step")
    finally:
        bar.close()  # on errors too, so that an error message starts a line of its own
        if accelerator.trackers:
            accelerator.end_training()
    return time.perf_counter() - started


def _threads(run: _Run) -> list[int]:
    """The run's thread counts, one per session that changed it (this one last)."""
    current = torch.get_num_threads()
    return run.thread_history if run.thread_history[-1:] == [current] else [*run.thread_history, current]


def _checkpoint(run: _Run, done: int) -> None:
    """Every process hands in its random state (its rows, and so its dropout draws, differ) and its shard of the
    model and optimizer; the main process writes the one checkpoint."""
    accelerator = run.accelerator
    rng = gather_object([rng_state()])  # one process: the list as it is
    model_state, optimizer_state = training_state(accelerator, run.model, run.optimizer)
    if not accelerator.is_main_process:
        return
    if not (run.output / CHECKPOINT_INFO).exists():  # the same for every checkpoint of the run
        write_json_atomic(run.output / CHECKPOINT_INFO,
                          {"identity": run.identity, "config": to_dict(run.config), "inputs": run.fingerprints})
    save_checkpoint(
        run.output / CHECKPOINT,
        {
            "format": CHECKPOINT_FORMAT,
            "threads": torch.get_num_threads(),
            "thread_history": _threads(run),
            "step": done,
            "model": model_state,
            "optimizer": optimizer_state,
            "scheduler": run.scheduler.state_dict(),
            "rng": rng[0],
            "rng_by_rank": rng,
            "history": run.history,
        },
    )


def _save(run: _Run, task: Any, examples: list[Example], elapsed: float) -> Path:
    """The student (the best step's weights under --keep-best) and its record; the main process writes."""
    config, accelerator, validator, history = run.config, run.accelerator, run.validator, run.history
    accelerator.wait_for_everyone()
    # Every process takes part: under FSDP or DeepSpeed ZeRO-3 the full weights are gathered from all shards.
    state_dict = None if config.lora_rank > 0 else accelerator.get_state_dict(run.model)
    if not accelerator.is_main_process:
        return run.output

    best = validator.best_state() if validator is not None else None
    if best is not None:
        accelerator.unwrap_model(run.model).load_state_dict(best)
        state_dict = None if config.lora_rank > 0 else best
    save_student(accelerator.unwrap_model(run.model), run.loaded.tokenizer, run.output, config.lora_rank > 0,
                 state_dict)
    record = StudentRecord(
        identity=run.identity,
        mode=run.mode.name,
        prompt=training_prompt(run.mode.predict_prefix, run.mode.answer_separator, TaskMarker.of(config.task_marker),
                               run.loaded.is_encoder_decoder),
        task=config.task,
        steps=config.steps,
        resumed_at_step=run.first_step or None,
        # How it ran: the process count and accelerate's distributed type (NO, MULTI_CPU, MULTI_GPU, FSDP, ...).
        processes=accelerator.num_processes,
        # CPU results are bit-identical only at the same thread count (docs/reliability.md): every session's.
        threads=torch.get_num_threads(),
        thread_history=_threads(run),
        distributed_type=str(accelerator.distributed_type.value),
        train_examples=len(examples),
        seconds=round(elapsed, 2),
        final_loss=history[-1]["loss"] if history else None,
        eval_split=config.eval_split if validator is not None else None,
        best_step=validator.best_step if validator is not None and config.keep_best else None,
        best_eval_accuracy=validator.best_accuracy if validator is not None and config.keep_best else None,
        labels=list(task.labels) if task.labels else None,
        command=COMMAND.get(),
        config=to_dict(config),
        inputs=run.fingerprints,
    )
    _write_student_files(config, run.output, history, examples, record)
    return run.output


def _write_student_files(config: TrainConfig, output: Path, history: list[dict[str, Any]], examples: list[Example],
                         record: StudentRecord) -> None:
    """Everything beside the weights, the identity last (its presence marks the run as finished), then the
    mid-run state goes."""
    write_config(config, output)
    write_file(output / TRAIN_LOG, "".join(json.dumps(entry) + "\n" for entry in history))
    # Which examples the model saw: extraction marks a fine-tuned teacher's rationales for them, and evaluation
    # refuses to report them as test rows.
    write_file(output / TRAIN_IDS, "".join(example.id + "\n" for example in examples))
    write_file(output / TRAIN_INPUTS, "".join(input_digest(e.input) + "\n" for e in examples))
    record.save(output)
    write_card(output)
    for name in (CHECKPOINT, CHECKPOINT_INFO, BEST_WEIGHTS):
        (output / name).unlink(missing_ok=True)
        for stale in output.glob(f".{name}.*.tmp"):  # a write a kill interrupted
            stale.unlink()
