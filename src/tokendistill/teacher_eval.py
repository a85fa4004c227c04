"""`tokendistill teacher-eval`: is the teacher competent on the task, and how should its answer be read?

Saliency carries knowledge only from a teacher that gets the answer right. This checks a teacher on a split,
by free generation and, where the task has a closed answer set, by scoring every candidate (summed and
length-normalised log-probability), and says which reading `extract` should use.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tokendistill.artefacts import (
    TEACHER_CHECK,
    TEACHER_CHECK_FOLDER,
    TEACHER_CHECK_OUTPUT,
    TEACHER_CHECK_PREDICTIONS,
)
from tokendistill.attribution.choices import score_choices
from tokendistill.attribution.teacher import Teacher
from tokendistill.config import TaskOptions, device_problem, differing_keys, fingerprint, write_config
from tokendistill.errors import UserError
from tokendistill.evaluation import refuse_training_rows
from tokendistill.folders import Found, Holds, clear, locked, open_output, read_json, refuse_overlap
from tokendistill.models import answer_length, load_model
from tokendistill.options import field_defaults, option, to_dict
from tokendistill.rationales import write_json_atomic, write_lines_atomic
from tokendistill.tasks import (
    chance_accuracy,
    get_task,
    length_buckets,
    load_examples,
    majority_accuracy,
    materialized,
)

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class TeacherEvalConfig(TaskOptions):
    teacher: str = option(dataclasses.MISSING, "teacher model: hub id, local folder or .gguf file")
    split: str = option("test", "split to check the teacher on")
    output: str | None = option(None, "folder for teacher_eval.json (default: print only)")
    batch_size: int = option(16, "examples per batch", minimum=1)
    max_input_length: int = option(512, "teacher input tokens", minimum=1)
    max_new_tokens: int | None = option(None, "generation length (default: a closed-set task's longest label in "
                                              "tokens + 1, else 32)", minimum=1)
    prompt_suffix: str | None = option(None, "text after the input for decoder teachers (default '\\nAnswer:')")
    chat_template: bool = option(False, "wrap the input in the teacher's chat template (instruct models)")
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)
    overwrite: bool = option(False, "replace an output folder that holds a different teacher check")
    generate: bool = option(True, "read the teacher's free generation too (--no-generate: only score the "
                                  "choices of a closed-set task, about a third of the time)")


# Settings that do not change the check's result.
_NOT_IDENTITY = ("output", "device", "batch_size", "overwrite")


def check_identity(config: TeacherEvalConfig) -> dict[str, Any]:
    """What makes another check: the teacher (by what its folder holds) and every setting but where it runs."""
    return json.loads(json.dumps({"teacher_fingerprint": fingerprint(config.teacher), **{
        key: value for key, value in to_dict(config).items() if key not in _NOT_IDENTITY}}, default=str))


def _changed(held: dict[str, Any], config: TeacherEvalConfig) -> list[str]:
    """The settings in which a recorded check differs from ``config``'s."""
    if isinstance(held.get("identity"), dict):
        return differing_keys(held["identity"], check_identity(config), field_defaults(TeacherEvalConfig))
    # Written before checks recorded their identity: the teacher, task and split it names.
    return [key for key in ("teacher", "task", "split") if held.get(key) != getattr(config, key)]


def finished_check(config: TeacherEvalConfig) -> dict[str, Any] | None:
    """The result of this very check where ``config.output`` holds it, else None (the rule `teacher-eval` and a
    grid both ask)."""
    path = Path(config.output or "") / TEACHER_CHECK
    if not config.output or not path.is_file():
        return None
    held = read_json(path, "pass --overwrite to check the teacher again")
    return None if _changed(held, config) else held


def _inspect(folder: Path, config: TeacherEvalConfig) -> Found:
    if not (folder / TEACHER_CHECK).is_file():
        return Found(Holds.FOREIGN)
    changed = _changed(read_json(folder / TEACHER_CHECK, "pass --overwrite to check the teacher again"), config)
    return Found(Holds.OTHER, tuple(changed)) if changed else Found(Holds.FINISHED)


def teacher_eval(config: TeacherEvalConfig, progress: bool = True) -> dict[str, Any]:
    """Check the teacher; with ``config.output``, write teacher_eval.json there (a folder of this check's own:
    refused when it holds another, returned as it is when it holds this one)."""
    config = materialized(config)  # in-memory rows (Python API) become a file named by their content
    if not config.output:
        result = _check(config, progress)
        del result["_rows"]
        return result
    output = Path(config.output)
    refuse_overlap(output, {"teacher": config.teacher, "data": config.data}, may_nest=frozenset({"teacher"}))
    with locked(output):
        found = open_output(output, TEACHER_CHECK_OUTPUT, lambda folder: _inspect(folder, config), config.overwrite)
        if found.holds is Holds.FINISHED:
            log.info("%s already holds this teacher check; nothing to do", output)
            return read_json(output / TEACHER_CHECK, "pass --overwrite to check the teacher again")
        result = {**_check(config, progress), "identity": check_identity(config)}
        rows = result.pop("_rows")
        if found.clear:
            clear(output)  # --overwrite: only now that the check is done
        # Each row's answers: the check's accuracy can be recomputed, and compared row by row with a student's.
        write_lines_atomic(output / TEACHER_CHECK_PREDICTIONS, (json.dumps(row) + "\n" for row in rows))
        write_json_atomic(output / TEACHER_CHECK, result)
        write_config(config, output)
    return result


def _check(config: TeacherEvalConfig, progress: bool) -> dict[str, Any]:
    task = get_task(config.task, input_column=config.input_column, label_column=config.label_column,
                    free_text=config.free_text)
    examples = load_examples(task, config.split, config.data, config.limit, config.seed, config.test_fraction,
                             config.valid_fraction)
    refuse_training_rows(config.teacher, examples, config.split)
    teacher = Teacher(load_model(config.teacher, device=config.device, offsets=True,
                                 trust_remote_code=config.trust_remote_code), config.max_input_length,
                      config.prompt_suffix, config.chat_template)
    has_choices = all(example.choices for example in examples)
    if not config.generate and not has_choices:
        raise UserError(f"--no-generate: task {task.name!r} has no closed set of answers to score; read its "
                        "generation (drop --no-generate)")
    readings = (("generation",) if config.generate else ()) + (("choice_sum", "choice_mean") if has_choices else ())
    rows: dict[str, dict[str, Any]] = {}  # per example: each reading's answer and whether it is right
    length = config.max_new_tokens or answer_length(teacher.tokenizer, examples, 32)
    bar = tqdm(total=len(examples), desc=TEACHER_CHECK_FOLDER, disable=not progress, unit="ex")
    for batch in length_buckets(examples, config.batch_size):
        answers = {"generation": teacher.generate(batch, length)} if config.generate else {}
        if has_choices:
            scores = score_choices(teacher, batch, task.name)
            answers.update({f"choice_{scoring}": scores.best(scoring) for scoring in ("sum", "mean")})
        for position, example in enumerate(batch):
            rows[example.id] = {"id": example.id, "target": example.target, **{
                reading: {"answer": answers[reading][position],
                          "correct": bool(task.score(answers[reading][position], example))}
                for reading in readings}}
        bar.update(len(batch))
    bar.close()
    ordered = [rows[example.id] for example in examples]
    accuracy = {reading: sum(row[reading]["correct"] for row in ordered) / len(examples) for reading in readings}
    # A reading that gives (nearly) one answer to every row scores the majority label's share, not knowledge.
    constant = {reading: _top_share([str(row[reading]["answer"]) for row in ordered]) >= CONSTANT_SHARE
                for reading in readings}
    varied = [reading for reading in readings if not constant[reading]] or list(readings)
    best = max(varied, key=lambda name: accuracy[name])
    chance = chance_accuracy(task, examples)
    advice = {
        "generation": "--target teacher",
        "choice_sum": "--target choice --choice-scoring sum",
        "choice_mean": "--target choice --choice-scoring mean",
    }[best]
    result = {
        "teacher": config.teacher,
        "task": config.task,
        "split": config.split,
        "examples": len(examples),
        "accuracy": accuracy,
        "chance_accuracy": chance,
        # Always answering the commonest label: the floor where chance is unknown (a user's text task).
        "majority_accuracy": majority_accuracy(example.target for example in examples),
        "best": best,
        "extract_with": advice,
        "near_chance": chance is not None and accuracy[best] < chance + 0.1,
        "constant_readings": sorted(reading for reading, flag in constant.items() if flag),
        # Below this margin over chance, the teacher's words carry little: fine-tune it first.
        "competent": chance is None or accuracy[best] >= chance + COMPETENT_MARGIN,
        "wrong_example": next(({"id": row["id"], "target": row["target"], "answer": row[best]["answer"]}
                               for row in ordered if not row[best]["correct"]), None),
        "_rows": ordered,
    }
    return result


# A reading whose commonest answer covers this share of the rows answers (nearly) the same to every row.
CONSTANT_SHARE = 0.95
# The teacher's margin over chance (or the majority label) below which `teacher-eval` says to fine-tune it first.
COMPETENT_MARGIN = 0.25


def _top_share(answers: list[str]) -> float:
    return max(Counter(answers).values()) / len(answers) if answers else 0.0


def format_result(result: dict[str, Any]) -> str:
    lines = [f"teacher {result['teacher']} on {result['task']}/{result['split']} ({result['examples']} examples)",
             "| reading | accuracy |", "|---|---|"]
    for name, value in result["accuracy"].items():
        lines.append(f"| {name.replace('_', ' ')} | {100 * value:.1f}% |")
    if result["chance_accuracy"] is not None:
        lines.append(f"| chance | {100 * result['chance_accuracy']:.1f}% |")
    for reading in result.get("constant_readings", []):
        lines.append(f"{reading.replace('_', ' ')}: (nearly) the same answer for every row: it measures the majority "
                     "label's share, not the teacher; never recommended")
    lines.append(f"best reading: {result['best']}; extract with {result['extract_with']}")
    if wrong := result.get("wrong_example"):
        lines.append(f"one wrong answer ({result['best'].replace('_', ' ')}): {str(wrong['answer'])[:120]!r} where "
                     f"the gold answer is {str(wrong['target'])[:120]!r} (row {wrong['id']})")
    if result["near_chance"] or not result.get("competent", True):
        why = ("WARNING: the teacher is near chance" if result["near_chance"]
               else f"the teacher is under {100 * COMPETENT_MARGIN:g} points above chance")
        # The command with this check's own teacher and task; the data options are the user's, as given here.
        lines.append(f"{why}: fine-tune it first, e.g. tokendistill train --mode standard --student "
                     f"{shlex.quote(str(result['teacher']))} --task {result['task']} (your data options as here) "
                     "--output runs/teacher --steps 200 (optionally --lora-rank 8), then check it again; otherwise "
                     "its words carry little knowledge")
    return "\n".join(lines)
