"""The attribution stage: teacher answers, token scores, top-k words, streamed into a rationale store."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tokendistill.attribution.methods import METHODS, MethodOptions
from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import (
    candidate_mask,
    merge_to_words,
    select_top_k,
    split_words,
    token_word_pairs,
)
from tokendistill.config import ExtractConfig, to_dict, write_config
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.rationales import RationaleStore
from tokendistill.tasks import Example, Task, get_task, load_examples

log = logging.getLogger(__name__)

# Settings that do not change a single record: a run that differs only in these resumes the same folder.
_NOT_IDENTITY = ("output", "overwrite", "device", "batch_size", "limit")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_buckets(examples: Sequence[Example], batch_size: int) -> Iterator[list[Example]]:
    """Batches of examples of similar length, so that little compute goes to padding."""
    ordered = sorted(examples, key=lambda example: (len(example.input), example.id))
    for start in range(0, len(ordered), batch_size):
        yield ordered[start : start + batch_size]


def chance_accuracy(task: Task, examples: Sequence[Example]) -> float | None:
    if task.labels:
        return 1 / len(task.labels)
    if examples and examples[0].choices:
        return 1 / len(examples[0].choices)
    return None


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def attribute_batch(
    teacher: Teacher, task: Task, examples: list[Example], config: ExtractConfig
) -> tuple[list[dict[str, Any]], int]:
    """Records for one batch of examples, and how many of their inputs were truncated."""
    teacher_answers = teacher.generate(examples, config.max_new_tokens)
    if config.target == "gold":
        answers = [example.target for example in examples]
        attributed = ["gold"] * len(examples)
    else:
        # An empty generated answer has no tokens to attribute: the gold target stands in, and the record says so.
        answers = [answer or example.target for answer, example in zip(teacher_answers, examples)]
        attributed = ["teacher" if answer else "gold" for answer in teacher_answers]
    batch = teacher.encode(examples, answers)
    words_per_example = [split_words(example) for example in examples]
    word_pairs = [token_word_pairs(offsets, words) for offsets, words in zip(batch.offsets, words_per_example)]
    method = METHODS.get(config.method)
    options = MethodOptions(ig_steps=config.ig_steps)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if teacher.device.type == "cuda" else nullcontext()
    )
    with autocast:
        token_scores = method(teacher, batch, word_pairs, options).float().cpu().numpy()
    records = []
    for row, (example, words) in enumerate(zip(examples, words_per_example)):
        merge = "max" if config.method == "occlusion" else config.merge
        scores = merge_to_words(token_scores[row], batch.offsets[row], words, merge)
        candidates = candidate_mask(words, config.drop_punctuation, config.drop_stopwords)
        chosen = select_top_k(scores, candidates, config.top_k)
        records.append(
            {
                "id": example.id,
                "input": example.input,
                "target": example.target,
                "teacher_answer": teacher_answers[row],
                "teacher_correct": task.score(teacher_answers[row], example),
                "attributed_answer": answers[row],
                "attributed": attributed[row],
                "rationale": [words[index].text for index in chosen],
                "rationale_positions": chosen.tolist(),
                "words": [word.text for word in words],
                "word_spans": [[word.start, word.end] for word in words],
                "word_roles": [word.role for word in words],
                "word_scores": [_json_float(score) for score in scores],
                "truncated": bool(np.isnan(scores[candidates]).any()) if candidates.any() else False,
            }
        )
    return records, batch.truncated


def extract(config: ExtractConfig, progress: bool = True) -> Path:
    """Run the attribution stage; returns the rationale folder. Resumes a folder that holds this config."""
    if config.top_k <= 0:
        raise UserError("--top-k must be positive: a count of words, or a fraction below 1")
    METHODS.get(config.method)  # fail on an unknown method before any model is loaded
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed)
    identity = {key: value for key, value in to_dict(config).items() if key not in _NOT_IDENTITY}
    store = RationaleStore.open(config.output, identity, config.overwrite)
    write_config(config, Path(config.output))
    todo = [example for example in examples if example.id not in store.records]
    if len(todo) < len(examples):
        log.info("resuming: %d of %d examples already done", len(examples) - len(todo), len(examples))
    seed_everything(config.seed)
    truncated = store.manifest.get("truncated", 0)
    if todo:
        loaded = load_model(config.teacher, device=config.device, offsets=True)
        teacher = Teacher(loaded, config.max_input_length, config.prompt_suffix)
        bar = tqdm(total=len(todo), desc=f"extract {config.method}", disable=not progress, unit="ex")
        for batch_examples in length_buckets(todo, config.batch_size):
            records, batch_truncated = attribute_batch(teacher, task, batch_examples, config)
            store.append(records)
            truncated += batch_truncated
            store.manifest["truncated"] = truncated
            bar.update(len(batch_examples))
        bar.close()
    if truncated:
        log.warning("%d inputs were longer than %d tokens and were truncated", truncated, config.max_input_length)
    done = [store.records[example.id] for example in examples]
    accuracy = sum(record["teacher_correct"] for record in done) / len(done)
    chance = chance_accuracy(task, examples)
    if chance is not None and accuracy < chance + 0.1:
        log.warning(
            "the teacher is right on %.1f%% of these examples, near chance (%.1f%%): its token scores carry "
            "little knowledge; fine-tune it on the task first or attribute --target gold",
            100 * accuracy,
            100 * chance,
        )
    store.finish(
        {
            "examples": len(done),
            "teacher": config.teacher,
            "teacher_accuracy": accuracy,
            "chance_accuracy": chance,
            "truncated_inputs": truncated,
            "config": dataclasses.asdict(config),
        }
    )
    return Path(config.output)
