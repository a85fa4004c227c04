"""The evaluation stage: a student generates on a split; the task scores it; predictions and metrics are saved."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from tokendistill.config import EvaluateConfig, write_config
from tokendistill.models import LoadedModel, load_model
from tokendistill.rationales import write_json_atomic
from tokendistill.tasks import Example, Task, get_task, load_examples
from tokendistill.tasks.base import first_line
from tokendistill.training.data import causal_prompt
from tokendistill.training.trainer import STUDENT_INFO


def student_info(model_dir: str | Path) -> dict[str, Any]:
    """What `train` recorded about a student; a plain checkpoint gets the standard mode's (empty) prefix."""
    path = Path(model_dir) / STUDENT_INFO
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"predict_prefix": ""}


@torch.inference_mode()
def generate(
    loaded: LoadedModel, sources: Sequence[str], max_input_length: int, max_new_tokens: int
) -> list[str]:
    """Greedy answers for a batch of sources."""
    tokenizer, model = loaded.tokenizer, loaded.model
    device = next(model.parameters()).device
    if loaded.is_encoder_decoder:
        encoded = tokenizer(
            list(sources), padding=True, truncation=True, max_length=max_input_length, return_tensors="pt"
        ).to(device)
        output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        encoded = tokenizer(
            [causal_prompt(source) for source in sources],
            padding=True,
            truncation=True,
            max_length=max_input_length,
            return_tensors="pt",
        ).to(device)
    finally:
        tokenizer.padding_side = side
    output = model.generate(
        **encoded, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=tokenizer.pad_token_id
    )
    decoded = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return [first_line(text) for text in decoded]


def predict(
    loaded: LoadedModel,
    task: Task,
    examples: Sequence[Example],
    prefix: str,
    batch_size: int,
    max_input_length: int,
    max_new_tokens: int,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], float]:
    """Predictions (one record per example) and accuracy under the task's metric."""
    loaded.model.eval()
    records = []
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, unit="batch"):
        chunk = examples[start : start + batch_size]
        answers = generate(loaded, [prefix + example.input for example in chunk], max_input_length, max_new_tokens)
        for example, answer in zip(chunk, answers):
            records.append(
                {"id": example.id, "prediction": answer, "target": example.target, "correct": task.score(answer, example)}
            )
    accuracy = sum(record["correct"] for record in records) / len(records)
    return records, accuracy


def evaluate(config: EvaluateConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate a student on a split; writes predictions.jsonl and metrics.json to ``config.output``."""
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed)
    info = student_info(config.model)
    loaded = load_model(config.model, device=config.device)
    records, accuracy = predict(
        loaded,
        task,
        examples,
        info.get("predict_prefix", ""),
        config.batch_size,
        config.max_input_length,
        config.max_new_tokens,
        progress,
    )
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    with (output / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    metrics = {
        "task": config.task,
        "split": config.split,
        "examples": len(records),
        "accuracy": accuracy,
        "model": config.model,
        "mode": info.get("mode"),
    }
    write_json_atomic(output / "metrics.json", metrics)
    write_config(config, output)
    return metrics
