"""The evaluation stage: a student generates on a split; the task scores it; predictions and metrics are saved."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from tokendistill.artefacts import METRICS, PREDICTIONS, STUDENT_INFO, TRAIN_INPUTS
from tokendistill.attribution.choices import score_choices
from tokendistill.attribution.teacher import Teacher
from tokendistill.card import write_card
from tokendistill.config import EvaluateConfig, write_config
from tokendistill.errors import UserError
from tokendistill.folders import locked, read_json, refuse_overlap
from tokendistill.models import LoadedModel, greedy_generate, load_model
from tokendistill.rationales import write_json_atomic
from tokendistill.tasks import Example, Task, get_task, input_digest, load_examples
from tokendistill.training.data import CAUSAL_CUE, causal_prompt
from tokendistill.training.modes import answer_part

log = logging.getLogger(__name__)

AnswerReading = Literal["generation", "choice_sum", "choice_mean"]


def student_info(model_dir: str | Path) -> dict[str, Any]:
    """What `train` recorded about a student; a plain checkpoint gets the standard mode's (empty) prefix."""
    path = Path(model_dir) / STUDENT_INFO
    if not path.exists():
        return {"predict_prefix": ""}
    return read_json(path, f"train the student again into {model_dir} with --overwrite")


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
    answer: AnswerReading = "generation",
) -> tuple[list[dict[str, Any]], float]:
    """Predictions (one record per example) and accuracy under the task's metric.

    ``task_marker``: where the student was trained to read ``prefix`` (before the input, or, for a seq2seq
    student trained with ``--task-marker decoder``, at the start of its output). ``answer``: which reading
    is the prediction; with a choice reading each record also keeps the generation and whether it was right.
    """
    loaded.model.eval()
    records = []
    in_decoder = task_marker == "decoder" and loaded.is_encoder_decoder
    input_prefix, decoder_prompt = ("", prefix.strip()) if in_decoder else (prefix, "")
    scorer = choice_scorer(loaded, task, examples, input_prefix, max_input_length, answer, in_decoder, separator)
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", disable=not progress, unit="batch"):
        chunk = examples[start : start + batch_size]
        generated = generate(loaded, [input_prefix + example.input for example in chunk], max_input_length,
                             max_new_tokens, decoder_prompt)
        generated = [answer_part(text, separator) for text in generated]
        picked = score_choices(scorer, chunk, task.name).best(answer[len("choice_"):]) if scorer else generated
        for example, text, prediction in zip(chunk, generated, picked):
            record = {"id": example.id, "prediction": prediction, "target": example.target,
                      "correct": task.score(prediction, example)}
            if scorer:
                record |= {"generation": text, "generation_correct": task.score(text, example)}
            records.append(record)
    accuracy = sum(record["correct"] for record in records) / len(records)
    return records, accuracy


def choice_scorer(
    loaded: LoadedModel, task: Task, examples: Sequence[Example], input_prefix: str, max_input_length: int,
    answer: AnswerReading, in_decoder: bool, separator: str | None,
) -> Teacher | None:
    """The student wrapped for candidate scoring, prompted exactly as it was trained (None: read generations).

    A small student's free generation can miss every candidate (a near-miss such as "go off" for "go
    downtown" scores zero) while it still ranks the candidates; scoring them reads a closed-set task the way
    the teacher's `--target choice` does.
    """
    if answer == "generation":
        return None
    if not all(example.choices for example in examples):
        raise UserError(f"--answer {answer}: task {task.name!r} has no closed set of answers to score; "
                        "use --answer generation")
    if in_decoder or (separator is not None and loaded.is_encoder_decoder):
        raise UserError(f"--answer {answer}: a seq2seq student whose output starts with a task marker or holds "
                        "more than the label (label_then_tokens) is read by its generation; use --answer generation")
    # The causal student was trained on input + CAUSAL_CUE -> " " + label (+ separator + words under
    # label_then_tokens): Teacher scores " " + candidate there, a prefix of that output either way.
    scorer = Teacher(loaded, max_input_length, prompt_suffix="" if loaded.is_encoder_decoder else CAUSAL_CUE)
    scorer.prompt_prefix = input_prefix
    return scorer


def refuse_training_rows(model: str, examples: Sequence[Example], split: str) -> None:
    """Refuse to report a model's own training rows as ``split`` rows (one data file serving every split, or a
    test file that repeats training rows): a test accuracy that is a training accuracy is a silent lie."""
    folder = Path(model)
    digests, info = folder / TRAIN_INPUTS, folder / STUDENT_INFO
    if not digests.is_file():
        return  # a model tokendistill did not train: its training rows are unknown
    recorded = read_json(info, "train that model again").get("config") or {} if info.is_file() else {}
    if recorded.get("split") == split:
        return  # the user asks for the training split itself
    seen = set(digests.read_text(encoding="utf-8").split())
    overlap = [example.id for example in examples if input_digest(example.input) in seen]
    if overlap and len(overlap) < 0.1 * len(examples):
        # A few repeated rows are a dataset's duplicates, not a split that is the training data.
        log.warning("%d of %d rows of split %r are also training rows of %s (the same input); they are kept",
                    len(overlap), len(examples), split, model)
    elif overlap:
        raise UserError(
            f"{len(overlap)} of {len(examples)} rows of split {split!r} are rows {model} was trained on (the same "
            f"input; first: {overlap[0]!r}): they would be reported as {split} accuracy; evaluate on held-out rows "
            "(a separate test file, or --test-fraction F in every stage, training included)"
        )


# What a student's recorded training config lends an evaluation that does not say (the task and its data).
_FROM_STUDENT = ("task", "data", "input_column", "label_column", "free_text", "test_fraction")


def with_students_task(config: EvaluateConfig) -> EvaluateConfig:
    """``config`` with the task options it leaves unset taken from the student's training config."""
    recorded = (student_info(config.model).get("config") or {}) if (Path(config.model) / STUDENT_INFO).is_file() else {}
    defaults = {f.name: f.default for f in dataclasses.fields(EvaluateConfig)}
    taken = {key: recorded[key] for key in _FROM_STUDENT
             if key in recorded and getattr(config, key) == defaults[key] and recorded[key] != defaults[key]}
    config = dataclasses.replace(config, **taken)
    if config.task is None:
        raise UserError(f"pass --task: {config.model} is not a student of tokendistill's, so its task is unknown")
    return config


def evaluate(config: EvaluateConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate a student on a split; writes predictions.jsonl and metrics.json to ``config.output``.

    The output folder is checked, locked and written to (its config) before the student loads, so that a
    bad output path fails at once rather than after the whole evaluation.
    """
    config = with_students_task(config)
    refuse_overlap(config.output, {"model": config.model, "data": config.data}, may_nest=frozenset({"model"}))
    with locked(config.output):
        write_config(config, Path(config.output))
        return _evaluate(config, progress)


def _evaluate(config: EvaluateConfig, progress: bool) -> dict[str, Any]:
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column,
                    free_text=config.free_text)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed, config.test_fraction)
    refuse_training_rows(config.model, examples, config.split)
    info = student_info(config.model)
    loaded = load_model(config.model, device=config.device, offsets=config.answer != "generation")
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
        config.answer,
    )
    output = Path(config.output)
    with (output / PREDICTIONS).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    metrics = {
        "task": config.task,
        "split": config.split,
        "examples": len(records),
        "limit": config.limit,
        "accuracy": accuracy,
        "answer": config.answer,
        "model": config.model,
        "mode": info.get("mode"),
        "model_identity": info.get("identity"),
    }
    if config.answer != "generation":
        metrics["generation_accuracy"] = sum(record["generation_correct"] for record in records) / len(records)
    write_json_atomic(output / METRICS, metrics)
    if (Path(config.model) / STUDENT_INFO).is_file() and info.get("config", {}).get("split") != config.split:
        # The card is ours (written whole from tokendistill.json) and is the one file of the model folder that an
        # evaluation changes, atomically: the weights and every other file stay as they are.
        write_card(config.model, metrics)
    return metrics
