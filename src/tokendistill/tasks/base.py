"""What a task is: raw records in, formatted examples and a score out."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokendistill.errors import UserError

# Role of the fixed wording a task adds around the data ("Answer Choices:", "(a)"); attribution never selects it.
TEMPLATE = "template"
# What a decoder model (teacher or student) reads after an input: the cue that its answer comes next. It lies
# outside the input text, so it never becomes a rationale word.
ANSWER_CUE = "\nAnswer:"


@dataclass(frozen=True)
class Segment:
    """A piece of an example's input text and what it is (question, choice, premise, template, ...)."""

    role: str
    text: str


@dataclass(frozen=True)
class Example:
    """One formatted example: the model sees ``input`` and should produce ``target``."""

    id: str
    segments: tuple[Segment, ...]
    target: str
    choices: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input(self) -> str:
        return "".join(segment.text for segment in self.segments)

    def role_spans(self) -> list[tuple[int, int, str]]:
        """Character spans ``(start, end, role)`` of the segments, in order."""
        spans, start = [], 0
        for segment in self.segments:
            spans.append((start, start + len(segment.text), segment.role))
            start += len(segment.text)
        return spans


def normalize_answer(text: str) -> str:
    """Lower-case, trim, drop a trailing full stop and collapse whitespace: how generated labels are compared."""
    text = re.sub(r"\s+", " ", text.strip().lower())
    return text.rstrip(".").strip()


def first_line(text: str) -> str:
    """The first non-empty line: a decoder runs on past its answer, and often starts with a newline."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


class Task:
    """Base class: a task formats raw records into examples and scores predictions.

    Subclasses set ``name`` and implement ``format``; ``score`` defaults to normalised exact match.
    ``labels`` is the closed label set of a classification task (``None`` for open targets).
    """

    name: str = ""
    labels: tuple[str, ...] | None = None
    # Hugging Face hub source: (dataset id, config name or None, {our split: hub split}).
    hub: tuple[str, str | None, dict[str, str]] | None = None
    splits: tuple[str, ...] = ("train", "test")
    # What starts the next few-shot example in an LLM completion of the DSS data (its rationale ends before it).
    llm_next_example: str | None = None

    def format(self, record: Mapping[str, Any], index: int, split: str) -> Example:
        raise NotImplementedError

    def unsplit_records(self, folder: Path, split: str) -> list[Mapping[str, Any]] | None:
        """A split made from a release that ships unsplit, where the task knows how (None: it does not)."""
        return None

    def score(self, prediction: str, example: Example) -> bool:
        return normalize_answer(prediction) == normalize_answer(example.target)

    def evidence_words(self, example: Example) -> tuple[str, ...]:
        """Input words that carry the answer, where the task knows them better than "the answer's words"."""
        return ()

    def require(self, record: Mapping[str, Any], column: str) -> Any:
        if column not in record:
            present = ", ".join(sorted(map(str, record))) or "none"
            raise UserError(
                f"task {self.name!r} needs a column {column!r} in every record; the data has: {present}"
            )
        return record[column]

    def check_label(self, label: str) -> str:
        if self.labels is not None and label not in self.labels:
            raise UserError(
                f"label {label!r} is not one of task {self.name!r}'s labels ({', '.join(self.labels)}); "
                "fix the data or pick the right --task"
            )
        return label


def length_buckets(examples: Iterable[Example], batch_size: int, window: int = 4096) -> Iterator[list[Example]]:
    """Batches of examples of similar length, so that little compute goes to padding.

    Examples are sorted by length within windows of ``window`` examples, read as they stream in, so memory
    stays flat on any dataset; the batches depend on the examples alone, never on what a run already did.
    """
    stream = iter(examples)
    while chunk := list(itertools.islice(stream, window)):
        ordered = sorted(chunk, key=lambda example: (len(example.input), example.id))
        for start in range(0, len(ordered), batch_size):
            yield ordered[start : start + batch_size]


def chance_accuracy(task: Task, examples: Sequence[Example]) -> float | None:
    if task.labels:
        return 1 / len(task.labels)
    if examples and examples[0].choices:
        return 1 / len(examples[0].choices)
    return None


def input_digest(text: str) -> str:
    """A short fingerprint of an input, to recognise a row by its content (which rows a model trained on)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def content_position(text: str) -> float:
    """A row's place in [0, 1), by the input's content alone: every stage, run and seed, and any order of the file,
    agree on it. The carved splits are ranges of it: test first, then validation."""
    digest = hashlib.sha1(("tokendistill-test-split:" + text).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 2**32


def held_out(text: str, test_fraction: float) -> bool:
    """Whether a row belongs to the test split carved out of a single file (``--test-fraction``)."""
    return content_position(text) < test_fraction


def carved_part(text: str, test_fraction: float | None, valid_fraction: float | None) -> str:
    """The split a row of the training data belongs to once ``--test-fraction`` and ``--valid-fraction`` carve it:
    "test" (the first range), "valid" (the next, disjoint from it), or "train" (the rest)."""
    position = content_position(text)
    if test_fraction is not None and position < test_fraction:
        return "test"
    if valid_fraction is not None and position < (test_fraction or 0.0) + valid_fraction:
        return "valid"
    return "train"


def majority_accuracy(targets: Iterable[str]) -> float | None:
    """The accuracy of always answering the commonest target (case and spacing aside): the floor of a
    classification where chance alone understates it, and the only one of a task without a label set."""
    counts = Counter(str(target).strip().lower() for target in targets)
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else None
