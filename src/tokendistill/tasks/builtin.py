"""The tasks of the paper (formatted as Distilling step-by-step formats them) and a generic text task."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokendistill.errors import UserError
from tokendistill.registry import Registry
from tokendistill.tasks.arithmetic import same_value
from tokendistill.tasks.base import TEMPLATE, Example, Segment, Task, normalize_answer

TASKS: Registry[type[Task]] = Registry("task")

NLI_LABELS = ("entailment", "neutral", "contradiction")
CHOICE_LETTERS = "abcdefghij"


def _text(value: Any, what: str, task: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"task {task!r}: {what} should be text, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise UserError(f"task {task!r}: {what} is empty; remove the record or fill it in")
    return value


def content_id(split: str, text: str) -> str:
    """An id from the row's content, for data without an id column: it follows the row wherever a shuffle or
    an edit of other rows moves it, so that rationales never pair with another row's input."""
    return f"{split}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


def _record_id(record: Mapping[str, Any], keys: tuple[str, ...], split: str, index: int) -> str:
    for key in keys:
        if record.get(key) not in (None, ""):
            return str(record[key])
    return f"{split}-{index}"


@TASKS.register("cqa")
class CommonsenseQA(Task):
    """CommonsenseQA (CoS-E v1.11): question, then ``Answer Choices:`` and ``(a) ... (e)``; target = answer text."""

    name = "cqa"
    hub = ("cos_e", "v1.11", {"train": "train", "test": "validation"})
    llm_next_example = "Q:"

    def format(self, record: Mapping[str, Any], index: int, split: str) -> Example:
        question = _text(self.require(record, "question"), "question", self.name)
        choices = tuple(str(choice) for choice in self.require(record, "choices"))
        answer = _text(self.require(record, "answer"), "answer", self.name)
        if answer not in choices:
            raise UserError(f"task 'cqa': answer {answer!r} is not among the choices {list(choices)}")
        segments = [Segment("question", question), Segment(TEMPLATE, "\nAnswer Choices:")]
        for letter, choice in zip(CHOICE_LETTERS, choices):
            segments += [Segment(TEMPLATE, f"\n({letter}) "), Segment("choice", choice)]
        return Example(_record_id(record, ("id",), split, index), tuple(segments), answer, choices)

    def score(self, prediction: str, example: Example) -> bool:
        # Accept "(c) wooded area" and a bare "(c)" as well as the answer text itself.
        match = re.match(r"\s*\(([a-j])\)\s*(.*)", prediction)
        if match:
            letter_index = CHOICE_LETTERS.index(match.group(1))
            if not match.group(2).strip() and letter_index < len(example.choices):
                prediction = example.choices[letter_index]
            else:
                prediction = match.group(2)
        return normalize_answer(prediction) == normalize_answer(example.target)


@TASKS.register("svamp")
class SVAMP(Task):
    """SVAMP: body and question; target = the equation, scored by evaluating both equations safely."""

    name = "svamp"
    hub = ("ChilleD/SVAMP", None, {"train": "train", "test": "test"})
    llm_next_example = "Q:"

    def unsplit_records(self, folder: Path, split: str) -> list[Mapping[str, Any]] | None:
        """DSS's split of the original SVAMP release (svamp/SVAMP.json): permutation(1000) with seed 0, first 800
        train."""
        import json

        import numpy as np

        original = folder / "svamp" / "SVAMP.json"
        if not original.is_file():
            return None
        records = json.loads(original.read_text(encoding="utf-8"))
        order = np.random.RandomState(seed=0).permutation(len(records))
        chosen = order[:800] if split == "train" else order[800:]
        return [records[int(i)] for i in chosen]

    def format(self, record: Mapping[str, Any], index: int, split: str) -> Example:
        if "input" in record:  # the DSS export: input = Body + "\n" + Question, label = Equation
            body_question = _text(record["input"], "input", self.name)
            body, _, question = body_question.rpartition("\n")
            segments = (Segment("body", body), Segment(TEMPLATE, "\n"), Segment("question", question))
            if not body:
                segments = (Segment("question", question),)
            target = _text(self.require(record, "label"), "label", self.name)
        else:  # the original release (SVAMP.json) and hub copies: Body, Question, Equation
            body = _text(self.require(record, "Body"), "Body", self.name)
            question = _text(self.require(record, "Question"), "Question", self.name)
            segments = (Segment("body", body), Segment(TEMPLATE, "\n"), Segment("question", question))
            target = _text(self.require(record, "Equation"), "Equation", self.name)
        return Example(_record_id(record, ("ID", "id"), split, index), segments, target.strip())

    def score(self, prediction: str, example: Example) -> bool:
        return same_value(prediction, example.target)


class _NLI(Task):
    labels = NLI_LABELS
    llm_next_example = "Premise:"
    id_keys: tuple[str, ...] = ("uid", "id")

    def format(self, record: Mapping[str, Any], index: int, split: str) -> Example:
        premise = _text(self.require(record, "premise"), "premise", self.name)
        hypothesis = _text(self.require(record, "hypothesis"), "hypothesis", self.name)
        label = self.require(record, "label")
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < len(NLI_LABELS):
                raise UserError(
                    f"task {self.name!r}: label {label} is outside 0..2 (entailment, neutral, contradiction); "
                    "hub exports mark unlabelled rows with -1, drop them first"
                )
            label = NLI_LABELS[label]
        label = self.check_label(normalize_answer(str(label)))
        # DSS joins premise and hypothesis with the tokenizer's EOS; rationales are text for any tokenizer,
        # so the two parts are labelled in words instead (the labels are template and never selected).
        segments = (
            Segment(TEMPLATE, "Premise: "),
            Segment("premise", premise),
            Segment(TEMPLATE, "\nHypothesis: "),
            Segment("hypothesis", hypothesis),
        )
        return Example(_record_id(record, self.id_keys, split, index), segments, label, NLI_LABELS)

    def score(self, prediction: str, example: Example) -> bool:
        words = normalize_answer(prediction).split()
        return bool(words) and words[0] == example.target


@TASKS.register("esnli")
class ESNLI(_NLI):
    name = "esnli"
    hub = ("esnli", None, {"train": "train", "valid": "validation", "test": "test"})
    splits = ("train", "valid", "test")


@TASKS.register("anli1")
class ANLI1(_NLI):
    name = "anli1"
    hub = ("anli", None, {"train": "train_r1", "valid": "dev_r1", "test": "test_r1"})
    splits = ("train", "valid", "test")


@TASKS.register("text")
class TextTask(Task):
    """User data: one input column and one label column (``--input-column``, ``--label-column``)."""

    name = "text"
    splits = ("train", "valid", "test")
    # More distinct labels than this are free text (answers, not classes): no closed set is offered.
    MAX_LABELS = 50

    def __init__(self, input_column: str = "input", label_column: str = "label", id_column: str = "id",
                 free_text: bool = False) -> None:
        self.input_column = input_column
        self.label_column = label_column
        self.id_column = id_column
        self.free_text = free_text
        self.labels: tuple[str, ...] | None = None

    @property
    def observes_labels(self) -> bool:
        """A label column is a classification in most hands: its observed values form the closed set, so that
        choice scoring, `--target choice` and a chance level work (``free_text`` keeps open targets)."""
        return not self.free_text and self.labels is None

    def observe(self, records: Iterable[Mapping[str, Any]]) -> None:
        seen = {str(record.get(self.label_column)).strip() for record in records
                if record.get(self.label_column) not in (None, "")}
        seen.discard("")
        if 2 <= len(seen) <= self.MAX_LABELS:
            self.labels = tuple(sorted(seen))

    def format(self, record: Mapping[str, Any], index: int, split: str) -> Example:
        text = _text(self.require(record, self.input_column), f"column {self.input_column!r}", self.name)
        label = self.require(record, self.label_column)
        if isinstance(label, (list, tuple, dict)):
            raise UserError(f"task 'text': column {self.label_column!r} holds a {type(label).__name__} in record {index} "
                            f"of {split!r}; a label is one value (text or a number): pick one column of single labels")
        if label is None or not str(label).strip():
            raise UserError(f"task 'text': column {self.label_column!r} is empty in record {index} of {split!r}")
        given = record.get(self.id_column)
        example_id = str(given) if given not in (None, "") else content_id(split, text)
        return Example(example_id, (Segment("input", text),), str(label).strip(), self.labels or (),
                       meta={} if given not in (None, "") else {"content_id": True})
