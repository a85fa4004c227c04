"""The evaluation stage: a student generates on a split; the task scores it; predictions and metrics are saved."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tokendistill.config import EvaluateConfig, write_config
from tokendistill.models import LoadedModel, greedy_generate, load_model
from tokendistill.rationales import write_json_atomic
from tokendistill.tasks import Example, Task, get_task, load_examples
from tokendistill.training.data import causal_prompt
from tokendistill.training.modes import answer_part
from tokendistill.training.trainer import STUDENT_INFO


def student_info(model_dir: str | Path) -> dict[str, Any]:
    """What `train` recorded about a student; a plain checkpoint gets the standard mode's (empty) prefix."""
    path = Path(model_dir) / STUDENT_INFO
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"predict_prefix": ""}


def generate(
    loaded: LoadedModel, sources: Sequence[str], max_input_length: int, max_new_tokens: int,
    decoder_prompt: str = "",
) -> list[str]:
    """Greedy answers for a batch of sources, prompted as the student was trained."""
    prompts = list(sources) if loaded.is_encoder_decoder else [causal_prompt(source) for source in sources]
    return greedy_generate(
        loaded.model, loaded.tokenizer, loaded.is_encoder_decoder, prompts, max_input_length, max_new_tokens,
        decoder_prompt,
    )


def predict(
    loaded: LoadedModel,
    task: Task,
    examples: Sequence[Example],
    prefix: str,
    batch_size: int,
    max_input_length: int,
    max_new_tokens: int,
    progress: bool = False,
    separator: str | None = None,
    task_marker: str = "encoder",
) -> tuple[list[dict[str, Any]], float]:
    """Predictions (one record per example) and accuracy under the task's metric.

    ``task_marker``: where the student was trained to read ``prefix`` (before the input, or, for a seq2seq
    student trained with ``--task-marker decoder``, at the start of its output).
    """
    loaded.model.eval()
    records = []
    in_decoder = task_marker == "decoder" and loaded.is_encoder_decoder
    input_prefix, decoder_prompt = ("", prefix.strip()) if in_decoder else (prefix, "")
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, unit="batch"):
        chunk = examples[start : start + batch_size]
        answers = generate(loaded, [input_prefix + example.input for example in chunk], max_input_length,
                           max_new_tokens, decoder_prompt)
        answers = [answer_part(answer, separator) for answer in answers]
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
        info.get("answer_separator"),
        info.get("task_marker", "encoder"),
    )
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    with (output / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    metrics = {
        "task": config.task,
        "split": config.split,
        "examples": len(records),
        "limit": config.limit,
        "accuracy": accuracy,
        "model": config.model,
        "mode": info.get("mode"),
        "model_identity": info.get("identity"),
    }
    write_json_atomic(output / "metrics.json", metrics)
    write_config(config, output)
    return metrics
