"""A trained student, as `train` leaves it: its record (``tokendistill.json``: typed, versioned, saved and loaded
here only) and its prompt (how it was trained to read an input: prefix, task marker, cue, what ends its answer).
`predict`, `evaluate`, the card, the trainer and every summary read the record through this module, so that the
rule of how a student is prompted exists once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from tokendistill.artefacts import STUDENT_INFO, TRAIN_LOG
from tokendistill.errors import UserError
from tokendistill.folders import read_json, write_file
from tokendistill.tasks.base import ANSWER_CUE

# The mode every other is compared with (fine-tuning on the labels alone), and the mode of a record that names none.
BASELINE_MODE = "standard"

# The text a multitask student's rows carry (the paper's task markers) and the explanation block's cue under the
# shared prompt (the label block keeps tasks.base.ANSWER_CUE): the prompt's own words, owned here.
PREDICT_PREFIX = "predict: "
EXPLAIN_PREFIX = "explain: "
EXPLAIN_CUE = "\nExplanation:"
# A training row (training.modes.base.TrainingRow: source, decoder_prompt, cue, shared_prompt), typed loosely here
# because the training stage imports this module.
Row = TypeVar("Row")


def marker_to_decoder(row: Row) -> Row:
    """The row with its task marker moved from the start of the input to the start of the output."""
    for prefix in (PREDICT_PREFIX, EXPLAIN_PREFIX):
        if row.source.startswith(prefix):  # type: ignore[attr-defined]
            return dataclasses.replace(row, source=row.source[len(prefix):],  # type: ignore[attr-defined,type-var]
                                       decoder_prompt=prefix.strip())
    return row


def marker_after_input(row: Row, shared_prompt: bool = True) -> Row:
    """A decoder student's row with its task marker moved after the input: the label row reads
    ``input + ANSWER_CUE`` (exactly what evaluation prompts with), the explanation row ``input + EXPLAIN_CUE``;
    both start with the same tokens, which a packed sequence shares."""
    source: str = row.source  # type: ignore[attr-defined]
    if source.startswith(EXPLAIN_PREFIX):
        return dataclasses.replace(row, source=source[len(EXPLAIN_PREFIX):], cue=EXPLAIN_CUE,  # type: ignore[type-var]
                                   shared_prompt=shared_prompt)
    if source.startswith(PREDICT_PREFIX):
        return dataclasses.replace(row, source=source[len(PREDICT_PREFIX):], shared_prompt=shared_prompt)  # type: ignore[type-var]
    return dataclasses.replace(row, shared_prompt=shared_prompt)  # type: ignore[type-var]

# 3: its config holds only its own mode's options (a mode's options are its config class's own fields); 2: the record
# written through StudentRecord (the fields below), its config every mode's options; 1: the plain dict written
# before, read alike.
RECORD_VERSION = 3
MODE_OPTIONS_SINCE = 3


class TaskMarker(str, Enum):
    """Where a multitask student's `predict:` / `explain:` markers go, and the row layout that follows."""

    ENCODER = "encoder"  # the paper's (and DSS's): before the input, one row per task
    DECODER = "decoder"  # a seq2seq student: at the start of its output, the encoder reading each input once
    SHARED_PROMPT = "shared_prompt"  # a decoder-only student: after the input, the rows packed into one sequence

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__

    @classmethod
    def of(cls, value: Any) -> TaskMarker:
        try:
            return cls(value)
        except ValueError:
            raise UserError(f"unknown task marker {value!r}; choose one of: "
                            f"{', '.join(marker.value for marker in cls)}") from None

    @property
    def is_papers(self) -> bool:
        return self is TaskMarker.ENCODER

    def predict_prefix(self, mode_prefix: str) -> str:
        """The prefix a label row's input carries: under the shared prompt the input is read plain, as a standard
        student's is."""
        return "" if self is TaskMarker.SHARED_PROMPT else mode_prefix

    def layout(self, rows: Sequence[Sequence[Row]]) -> list[list[Row]]:
        """Each example's rows in this layout."""
        move = {TaskMarker.DECODER: marker_to_decoder, TaskMarker.SHARED_PROMPT: marker_after_input}.get(self)
        return [[move(row) if move else row for row in example_rows] for example_rows in rows]

    def problem(self, mode_name: str, mode_prefix: str, is_encoder_decoder: bool, processes: int) -> str | None:
        """Why this layout cannot train this mode on this student, or None."""
        if self.is_papers:
            return None
        if not mode_prefix:
            return (f"--task-marker {self} moves the `predict:` / `explain:` markers; mode {mode_name!r} has none "
                    "(use multitask, multitask_kd or dss)")
        if self is TaskMarker.SHARED_PROMPT:
            return ("--task-marker shared_prompt packs a decoder-only student's rows; for a seq2seq student use "
                    "--task-marker decoder") if is_encoder_decoder else None
        if not is_encoder_decoder:
            return ("--task-marker decoder needs a seq2seq student (a decoder-only student reads the marker after "
                    "the input anyway); use --task-marker encoder")
        if processes > 1:
            return "--task-marker decoder runs in one process only for now; launch one process or use --task-marker encoder"
        return None


def answer_part(prediction: str, separator: str | None) -> str:
    """The label part of a prediction made by a mode that writes more after it."""
    return prediction.split(separator)[0].strip() if separator else prediction


@dataclass(frozen=True)
class StudentPrompt:
    """How a student reads an input to answer it, exactly as it was trained."""

    prefix: str = ""  # before the input (`predict: `), or, under the decoder marker, the start of the output
    marker: TaskMarker = TaskMarker.ENCODER
    is_encoder_decoder: bool = False
    answer_separator: str | None = None  # where the student writes more than the label, the label ends here

    @property
    def in_decoder(self) -> bool:
        return self.marker is TaskMarker.DECODER and self.is_encoder_decoder

    @property
    def input_prefix(self) -> str:
        return "" if self.in_decoder else self.prefix

    @property
    def decoder_start(self) -> str:
        """What a seq2seq student's output starts with (the task marker), teacher-forced."""
        return self.prefix.strip() if self.in_decoder else ""

    @property
    def cue(self) -> str:
        """What a decoder-only student reads after the input."""
        return "" if self.is_encoder_decoder else ANSWER_CUE

    def parts(self) -> tuple[str, str, str]:
        """(before the input, after it, the start of a seq2seq output) for the label task."""
        return self.input_prefix, self.cue, self.decoder_start

    def source(self, text: str) -> str:
        """The input as the student's encoder (or, before the cue, its decoder) reads it."""
        return self.input_prefix + text

    def answer(self, generated: str) -> str:
        """The label part of what the student wrote."""
        return answer_part(generated, self.answer_separator)


@dataclass(frozen=True)
class StudentRecord:
    """What `train` records of a student: its identity, prompt, how it was trained and on what."""

    identity: str | None
    mode: str
    prompt: StudentPrompt
    task: str | None = None
    steps: int | None = None
    resumed_at_step: int | None = None
    processes: int | None = None
    threads: int | None = None
    thread_history: list[int] = field(default_factory=list)
    distributed_type: str | None = None
    train_examples: int | None = None
    seconds: float | None = None
    final_loss: float | None = None
    eval_split: str | None = None
    best_step: int | None = None
    best_eval_accuracy: float | None = None
    labels: list[str] | None = None  # a closed label set: what `predict --answer choice_*` scores
    command: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    def to_json(self) -> dict[str, Any]:
        """The file's fields, flat (the prompt's under the names version 1 used: readers of either agree)."""
        values = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)
                  if item.name not in ("prompt", "version")}
        return {**values, "record_version": self.version, "predict_prefix": self.prompt.prefix,
                "task_marker": self.prompt.marker.value, "is_encoder_decoder": self.prompt.is_encoder_decoder,
                "answer_separator": self.prompt.answer_separator}

    @classmethod
    def from_json(cls, values: dict[str, Any], path: Path) -> StudentRecord:
        def damaged(what: str) -> UserError:
            return UserError(f"{path} is damaged ({what}); train that student again with --overwrite")

        kinds = {"identity": str, "mode": str, "task": str, "predict_prefix": str, "task_marker": str,
                 "answer_separator": str, "is_encoder_decoder": bool, "config": dict, "inputs": dict,
                 "labels": list, "thread_history": list, "command": str, "eval_split": str,
                 "distributed_type": str}
        for name, kind in kinds.items():
            if values.get(name) is not None and not isinstance(values[name], kind):
                raise damaged(f"its {name!r} is not a {kind.__name__}")
        for name in ("steps", "resumed_at_step", "processes", "threads", "train_examples", "best_step"):
            value = values.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise damaged(f"its {name!r} is not a whole number")
        try:
            marker = TaskMarker(values.get("task_marker") or TaskMarker.ENCODER.value)
        except ValueError:
            raise damaged(f"its task marker {values.get('task_marker')!r} is unknown") from None
        prompt = StudentPrompt(values.get("predict_prefix") or "", marker, bool(values.get("is_encoder_decoder")),
                               values.get("answer_separator"))
        known = {item.name for item in dataclasses.fields(cls)} - {"prompt", "version"}
        return cls(prompt=prompt, version=int(values.get("record_version") or 1),
                   **{"identity": None, "mode": BASELINE_MODE,
                      **{name: values[name] for name in known if values.get(name) is not None}})

    def save(self, folder: str | Path) -> None:
        import json

        write_file(Path(folder) / STUDENT_INFO, json.dumps(self.to_json(), indent=2, sort_keys=True, default=str))


def training_prompt(mode_prefix: str, answer_separator: str | None, marker: TaskMarker,
                    is_encoder_decoder: bool) -> StudentPrompt:
    """The prompt a student of a mode (its `predict:` prefix and answer separator) learns in a layout."""
    return StudentPrompt(marker.predict_prefix(mode_prefix), marker, is_encoder_decoder, answer_separator)


def training_summary(folder: str | Path) -> str:
    """What a training run ends with: where the student is, its steps and final losses, the kept step, and the
    next command."""
    import json

    record = load_record(folder)
    lines = [f"student: {folder}", f"  {record.mode}, {record.steps} steps on {record.train_examples} examples"
             + (f" ({record.seconds:.0f} s)" if record.seconds else "")]
    log = Path(folder) / TRAIN_LOG
    if log.is_file() and (entries := [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
                                      if line.strip()]):
        last = entries[-1]
        losses = ", ".join(f"{name} {value:.4g}" for name, value in last.items()
                           if name.endswith("loss") and isinstance(value, (int, float)))
        lines.append(f"  final losses (step {last.get('step')}): {losses}")
    if record.best_step is not None and record.best_eval_accuracy is not None:
        lines.append(f"  kept the weights of step {record.best_step} ({100 * record.best_eval_accuracy:.1f}% on "
                     f"{record.eval_split})")
    lines.append(f"  next: tokendistill evaluate --model {folder} --split test --output EVALUATION_FOLDER")
    return "\n".join(lines)


def has_record(folder: str | Path) -> bool:
    return (Path(folder) / STUDENT_INFO).is_file()


def load_record(folder: str | Path) -> StudentRecord:
    """A student's record, or one line: not a student folder, or a damaged record."""
    path = Path(folder) / STUDENT_INFO
    if not path.is_file():
        raise UserError(f"{folder} is not a student folder written by `tokendistill train` (no {STUDENT_INFO})")
    return StudentRecord.from_json(read_json(path, "train that student again with --overwrite"), path)


def find_record(folder: str | Path) -> StudentRecord | None:
    """The record of a student folder; None for a model tokendistill did not train (no record)."""
    return load_record(folder) if has_record(folder) else None


def record_or_none(folder: str | Path) -> StudentRecord | None:
    """For summaries over many folders (a results table, a report, plots): None where the record is missing or
    damaged, never an error."""
    try:
        return find_record(folder)
    except UserError:
        return None


def prompt_of(folder: str | Path, is_encoder_decoder: bool) -> StudentPrompt:
    """How to prompt a model: its record's prompt, or, for a model tokendistill did not train, the plain one."""
    record = find_record(folder)
    return record.prompt if record else StudentPrompt(is_encoder_decoder=is_encoder_decoder)
