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
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from tokendistill.attribution.extract import seed_everything
from tokendistill.config import TrainConfig, to_dict, write_config
from tokendistill.errors import UserError
from tokendistill.models import load_model, resolve_device
from tokendistill.rationales import load_rationales
from tokendistill.tasks import Example, get_task, load_examples
from tokendistill.training.data import encode_rows, multitask_loss, token_losses
from tokendistill.training.modes import MODES, Mode, TrainingRow

log = logging.getLogger(__name__)

STUDENT_INFO = "tokendistill.json"


def build_rows(mode: Mode, examples: list[Example], rationale_folder: str | None) -> list[list[TrainingRow]]:
    """Each example's training rows, joined with its rationale record by id."""
    if not mode.needs_rationales:
        return [mode.rows(example, None) for example in examples]
    if not rationale_folder:
        raise UserError(f"mode {mode.name!r} learns from rationales: pass --rationales FOLDER from `extract`")
    rationales = load_rationales(rationale_folder)
    missing = [example.id for example in examples if example.id not in rationales]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(examples)} training examples have no rationale in {rationale_folder} "
            f"(first: {missing[0]!r}); extract the same task, split and --limit, or resume the extraction"
        )
    return [mode.rows(example, rationales[example.id]) for example in examples]


def example_order(count: int, seed: int) -> Iterator[int]:
    """An endless stream of example indices: a fresh permutation per epoch, fixed by the seed."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from torch.randperm(count, generator=generator).tolist()


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train a student and save it (weights, tokenizer, config) to ``config.output``; returns that folder."""
    mode = MODES.get(config.mode)
    if not 0 <= config.alpha <= 1:
        raise UserError(f"--alpha must lie in [0, 1], got {config.alpha}")
    output = Path(config.output)
    if (output / STUDENT_INFO).exists() and not config.overwrite:
        raise UserError(f"{output} already holds a trained student; choose another --output or pass --overwrite")
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed)
    rows = build_rows(mode, examples, config.rationales)

    seed_everything(config.seed)
    device = resolve_device(config.device)
    loaded = load_model(config.student, init=config.init, device="cpu")
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision="bf16" if device.type == "cuda" else "no")
    model = loaded.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    model, optimizer = accelerator.prepare(model, optimizer)

    order = example_order(len(examples), config.seed)
    examples_per_step = min(config.batch_size, len(examples))
    log_path = output / "train_log.jsonl"
    output.mkdir(parents=True, exist_ok=True)
    history = []
    started = time.perf_counter()
    bar = tqdm(range(config.steps), desc=f"train {mode.name}", disable=not progress, unit="step")
    for step in bar:
        batch_rows = [row for _ in range(examples_per_step) for row in rows[next(order)]]
        encoded = encode_rows(
            loaded.tokenizer, batch_rows, loaded.is_encoder_decoder, config.max_input_length, config.max_target_length
        )
        inputs = {key: value.to(accelerator.device) for key, value in encoded.model_inputs.items()}
        labels = encoded.labels.to(accelerator.device)
        if loaded.is_encoder_decoder:
            # Passing labels only for the decoder inputs; the loss is computed per row below.
            inputs["decoder_input_ids"] = accelerator.unwrap_model(model).prepare_decoder_input_ids_from_labels(
                labels=labels
            )
        with accelerator.autocast():
            logits = model(**inputs).logits
        row_loss, row_tokens = token_losses(logits, labels, loaded.is_encoder_decoder)
        loss, parts = multitask_loss(row_loss, row_tokens, encoded.groups, config.alpha)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise UserError(f"the training loss became {value} at step {step}; lower --learning-rate")
        history.append({"step": step + 1, "loss": value, **parts})
        if step % 10 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
    bar.close()
    elapsed = time.perf_counter() - started

    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(output)
    loaded.tokenizer.save_pretrained(output)
    write_config(config, output)
    with log_path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(entry) + "\n" for entry in history)
    info = {
        "mode": mode.name,
        "predict_prefix": mode.predict_prefix,
        "task": config.task,
        "is_encoder_decoder": loaded.is_encoder_decoder,
        "steps": config.steps,
        "train_examples": len(examples),
        "seconds": round(elapsed, 2),
        "final_loss": history[-1]["loss"] if history else None,
        "config": to_dict(config),
    }
    (output / STUDENT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return output
