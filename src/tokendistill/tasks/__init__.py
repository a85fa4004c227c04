"""Tasks: load raw records, format them into examples, score predictions."""

from __future__ import annotations

import inspect
from typing import Any

from tokendistill.tasks import synthetic as _synthetic  # noqa: F401  (registers the demo task)
from tokendistill.tasks.base import (
    TEMPLATE,
    Example,
    Segment,
    Task,
    chance_accuracy,
    held_out,
    input_digest,
    length_buckets,
    majority_accuracy,
    normalize_answer,
)
from tokendistill.tasks.builtin import TASKS
from tokendistill.tasks.loading import (
    iter_examples,
    load_examples,
    materialized,
    parse_split,
    raw_records,
    split_size,
)


def get_task(name: str, **options: Any) -> Task:
    """An instance of the task registered as ``name``; options go to tasks that take them (``text``)."""
    task_class = TASKS.get(name)
    parameters = inspect.signature(task_class.__init__).parameters
    accepted = {key: value for key, value in options.items() if value is not None and key in parameters}
    return task_class(**accepted)


__all__ = [
    "TASKS",
    "TEMPLATE",
    "Example",
    "Segment",
    "Task",
    "chance_accuracy",
    "get_task",
    "held_out",
    "input_digest",
    "iter_examples",
    "length_buckets",
    "majority_accuracy",
    "load_examples",
    "split_size",
    "materialized",
    "normalize_answer",
    "parse_split",
    "raw_records",
]
