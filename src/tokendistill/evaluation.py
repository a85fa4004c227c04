"""The evaluation stage: a student generates on a split; the task scores it; predictions and metrics are saved."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tokendistill.artefacts import (
    EVALUATION_FOLDER,
    METRICS,
    PARTIAL_PREDICTIONS,
    PREDICTIONS,
    TRAIN_INPUTS,
    TRAIN_INPUTS_BEFORE,
)
from tokendistill.card import write_card
from tokendistill.config import EvaluateConfig, differing_keys, fingerprint, write_config
from tokendistill.errors import UserError
from tokendistill.faults import crash_point
from tokendistill.folders import (
    Found,
    Holds,
    append_lines,
    clear,
    locked,
    open_output,
    read_json,
    refuse_overlap,
    write_file,
)
from tokendistill.models import answer_length, load_model
from tokendistill.options import field_defaults, to_dict
from tokendistill.rationales import write_json_atomic
from tokendistill.student import StudentPrompt, StudentRecord, find_record
from tokendistill.tasks import Example, get_task, input_digest, load_examples, materialized
from tokendistill.training.answers import predict

log = logging.getLogger(__name__)

def refuse_training_rows(model: str, examples: Sequence[Example], split: str) -> None:
    """Refuse to report a model's own training rows as ``split`` rows (one data file serving every split, or a
    test file that repeats training rows): a test accuracy that is a training accuracy is a silent lie."""
    folder = Path(model)
    digests = next((folder / name for name in (TRAIN_INPUTS, TRAIN_INPUTS_BEFORE) if (folder / name).is_file()),
                   folder / TRAIN_INPUTS)
    record = find_record(folder)
    if not digests.is_file():
        return  # a model tokendistill did not train: its training rows are unknown
    recorded = record.config if record else {}
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
_FROM_STUDENT = ("task", "data", "input_column", "label_column", "free_text", "test_fraction", "valid_fraction")


def with_students_task(config: EvaluateConfig) -> EvaluateConfig:
    """``config`` with the task options it leaves unset taken from the student's training config."""
    record = find_record(config.model)
    recorded = record.config if record else {}
    defaults = {f.name: f.default for f in dataclasses.fields(EvaluateConfig)}
    taken = {key: recorded[key] for key in _FROM_STUDENT
             if key in recorded and getattr(config, key) == defaults[key] and recorded[key] != defaults[key]}
    config = dataclasses.replace(config, **taken)
    if config.task is None:
        raise UserError(f"pass --task: {config.model} is not a student of tokendistill's, so its task is unknown")
    return config


def evaluate(config: EvaluateConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate a student on a split; writes predictions.jsonl and metrics.json to ``config.output``.

    The output folder is checked and locked before anything loads, and its config written before the student
    loads, so that a bad output path fails at once rather than after the whole evaluation.
    """
    config = materialized(config)  # in-memory rows (Python API) become a file named by their content
    config = with_students_task(config)
    refuse_overlap(config.output, {"model": config.model, "data": config.data}, may_nest=frozenset({"model"}))
    with locked(config.output):
        found = open_output(config.output, EVALUATION_FOLDER, lambda folder: _inspect(folder, config),
                            config.overwrite)
        if found.holds is Holds.FINISHED:
            log.info("%s already holds this evaluation; nothing to evaluate", config.output)
            metrics = read_json(Path(config.output) / METRICS, "pass --overwrite to evaluate again")
            if config.update_card:
                update_card(config, metrics, find_record(config.model))
            return metrics
        return _evaluate(config, progress, found.clear)


# Settings that do not change an evaluation's predictions: where and how fast it runs, and what happens to a folder.
_NOT_IDENTITY = ("output", "device", "batch_size", "overwrite", "update_card")


def evaluation_identity(config: EvaluateConfig) -> dict[str, Any]:
    """What makes another evaluation: the student (by its own identity) and every setting but where it runs."""
    return json.loads(json.dumps({"model": fingerprint(config.model), **{
        key: value for key, value in to_dict(config).items() if key not in _NOT_IDENTITY}}, default=str))


def _changed(held: Any, identity: dict[str, Any]) -> tuple[str, ...]:
    """The settings in which a recorded evaluation identity differs from ``identity`` (a setting added later
    counts as its default, as for every stage)."""
    if not isinstance(held, dict):
        return ("(an evaluation of an unknown configuration)",)
    return tuple(differing_keys(held, identity, field_defaults(EvaluateConfig)))


def finished_metrics(config: EvaluateConfig) -> dict[str, Any] | None:
    """The metrics of this very evaluation where the folder holds it finished, else None (the one rule of when an
    evaluation is done: `evaluate` and a grid's cells both ask here)."""
    output = Path(config.output)
    if not ((output / METRICS).is_file() and (output / PREDICTIONS).is_file()):
        return None
    metrics = read_json(output / METRICS, "pass --overwrite to evaluate again")
    if "identity" in metrics:
        return None if _changed(metrics["identity"], evaluation_identity(config)) else metrics
    # Written before metrics recorded their identity: done when the student, the rows and the answer reading
    # agree (the rule `run` applied then), so that a grid begun then does not evaluate its cells again.
    record = find_record(config.model)
    identity = record.identity if record else None
    agree = (metrics.get("model_identity") == identity is not None and metrics.get("limit") == config.limit
             and metrics.get("answer", "generation") == config.answer)
    return metrics if agree else None


def _partial_identity(partial: Path) -> Any:
    """The identity an unfinished evaluation recorded on its first line (None where unreadable)."""
    try:
        with partial.open(encoding="utf-8") as handle:
            return json.loads(handle.readline())
    except (OSError, ValueError):
        return None


def _inspect(folder: Path, config: EvaluateConfig) -> Found:
    """An evaluation folder as `open_output` asks: finished, resumable, another evaluation's, or not one."""
    if (folder / METRICS).is_file():
        if finished_metrics(config) is not None:
            return Found(Holds.FINISHED)
        metrics = read_json(folder / METRICS, "pass --overwrite to evaluate again")
        if "identity" in metrics:
            return Found(Holds.OTHER, _changed(metrics["identity"], evaluation_identity(config)))
        return Found(Holds.OTHER, ("(an evaluation recorded before identities: another student, limit or answer)",))
    if (folder / PARTIAL_PREDICTIONS).is_file():
        changed = _changed(_partial_identity(folder / PARTIAL_PREDICTIONS), evaluation_identity(config))
        return Found(Holds.OTHER, changed) if changed else Found(Holds.PARTIAL)
    if (folder / PREDICTIONS).is_file():
        return Found(Holds.PARTIAL)  # killed before its metrics: predicted again, then written whole
    return Found(Holds.FOREIGN)


# Rows predicted between two appends to the partial predictions (the interruption tests make it small).
EVALUATION_CHUNK = int(os.environ.get("TOKENDISTILL_EVALUATION_CHUNK", "256"))


def _resume_predictions(partial: Path, identity: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rows an interrupted evaluation of this very configuration finished (its first line is the
    identity); anything else there is started over. A damaged line is dropped and its row predicted again."""
    if partial.is_file() and not _changed(_partial_identity(partial), identity):
        done = {}
        for line in partial.read_text(encoding="utf-8").splitlines()[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "id" in record:
                done[record["id"]] = record
        return done
    write_file(partial, json.dumps(identity, default=str) + "\n")
    return {}


def _evaluate(config: EvaluateConfig, progress: bool, to_clear: bool) -> dict[str, Any]:
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column,
                    free_text=config.free_text)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed, config.test_fraction,
                             config.valid_fraction)
    refuse_training_rows(config.model, examples, config.split)
    record = find_record(config.model)
    output = Path(config.output)
    loaded = None
    if to_clear:
        # --overwrite: the student loads first, so that a missing or broken one leaves the earlier evaluation as it
        # was; only then is the folder cleared.
        loaded = load_model(config.model, device=config.device, offsets=config.answer != "generation",
                            trust_remote_code=config.trust_remote_code)
        clear(output)
    write_config(config, output)
    partial = output / PARTIAL_PREDICTIONS
    identity = evaluation_identity(config)
    done = _resume_predictions(partial, identity)
    if done:
        log.info("resuming: %d of %d rows already predicted", len(done), len(examples))
    todo = [example for example in examples if example.id not in done]
    if todo and loaded is None:
        loaded = load_model(config.model, device=config.device, offsets=config.answer != "generation",
                            trust_remote_code=config.trust_remote_code)
    length = config.max_new_tokens or (answer_length(loaded.tokenizer, examples, 64) if loaded else 64)
    # In chunks appended as they finish: a killed evaluation resumes where it stopped (a long choice-scored
    # split takes many minutes on a CPU), each chunk one write to a file opened for appending.
    bar = tqdm(total=len(examples), initial=len(examples) - len(todo), desc="evaluate", disable=not progress,
               unit="ex")
    try:
        for start in range(0, len(todo), EVALUATION_CHUNK):
            chunk = todo[start : start + EVALUATION_CHUNK]
            prompt = record.prompt if record else StudentPrompt(is_encoder_decoder=loaded.is_encoder_decoder)
            chunk_records, _ = predict(loaded, task, chunk, prompt, config.batch_size, config.max_input_length,
                                       length, answer=config.answer)
            append_lines(partial, [json.dumps(record, ensure_ascii=False) for record in chunk_records])
            done.update({record["id"]: record for record in chunk_records})
            bar.update(len(chunk))
            crash_point("evaluate.after_chunk")
    finally:
        bar.close()
    records = [done[example.id] for example in examples]
    accuracy = sum(record["correct"] for record in records) / len(records)
    write_file(output / PREDICTIONS, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    partial.unlink(missing_ok=True)
    metrics = {
        "task": config.task,
        "split": config.split,
        "examples": len(records),
        "limit": config.limit,
        "accuracy": accuracy,
        "answer": config.answer,
        "model": config.model,
        "mode": record.mode if record else None,
        "model_identity": record.identity if record else None,
        "identity": identity,
    }
    if config.answer != "generation":
        metrics["generation_accuracy"] = sum(record["generation_correct"] for record in records) / len(records)
    write_json_atomic(output / METRICS, metrics)
    if config.update_card:
        update_card(config, metrics, record)
    return metrics


def update_card(config: EvaluateConfig, metrics: dict[str, Any], record: StudentRecord | None) -> None:
    """The one write of an evaluation into the student's folder, asked for with --update-card: the card (written
    whole from tokendistill.json, atomically) under the folder's lock, so that no training run is mid-write there."""
    if record is None:
        raise UserError(f"--update-card: {config.model} is not a student folder written by `train`; its card is "
                        "not ours to change")
    if record.config.get("split") == config.split:
        log.warning("--update-card: %s rows are the student's training split; the card is left as it was", config.split)
        return
    with locked(config.model, "--model"):
        write_card(config.model, metrics)


def evaluation_summary(metrics: dict[str, Any], output: str) -> str:
    """What `evaluate` ends with: the accuracy, on how many rows of which split, read how; where the files are."""
    reading = metrics.get("answer", "generation")
    lines = [f"accuracy: {100 * metrics['accuracy']:.1f}% on {metrics.get('examples')} {metrics.get('split')} rows "
             f"({reading.replace('_', ' ')})"]
    if reading != "generation" and metrics.get("generation_accuracy") is not None:
        lines[0] += f"; by generation {100 * metrics['generation_accuracy']:.1f}%"
    lines.append(f"  predictions, each with its input: {Path(output) / PREDICTIONS}; metrics: {Path(output) / METRICS}")
    lines.append(f"  next: tokendistill predict --model {shlex.quote(str(metrics.get('model')))} \"your input\"")
    return "\n".join(lines)
