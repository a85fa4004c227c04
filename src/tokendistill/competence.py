"""Whether a grid's setting can decide anything: a student that learns the task, a teacher that knows more than
it, and words that carry answer information, each checked as soon as the grid has what it needs."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokendistill.artefacts import METRICS, PREDICTIONS
from tokendistill.errors import UserError
from tokendistill.folders import read_json
from tokendistill.tasks import majority_accuracy

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Competence:
    """What the grid's setting must hold for its comparison to mean anything, checked as soon as it can be.

    A student that cannot learn the task, or a teacher no better than it, makes every mode look alike; the
    runner stops the grid there (``on_failure: stop``, the default), its finished work kept, or says so and
    goes on (``warn``: a grid run to see what happens anyway).
    """

    student_margin: float = 0.15  # the `standard` student above the majority class of the validation rows
    teacher_margin: float = 0.10  # the teacher above the `standard` student, same validation rows
    on_failure: str = "stop"


def parse_competence(raw: Any, path: str | Path) -> Competence:
    if raw is None:
        return Competence()
    if not isinstance(raw, dict):
        raise UserError(f"{path}: competence should be a mapping, e.g. {{on_failure: stop}}, got {raw!r}")
    known = {item.name for item in dataclasses.fields(Competence)}
    if unknown := sorted(set(raw) - known):
        raise UserError(f"{path}: competence: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    competence = Competence(**raw)
    for name in ("student_margin", "teacher_margin"):
        value = getattr(competence, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise UserError(f"{path}: competence.{name} should be a share between 0 and 1 (0.15 = 15 points), "
                            f"got {value!r}")
    if competence.on_failure not in ("warn", "stop"):
        raise UserError(f"{path}: competence.on_failure should be warn or stop, got {competence.on_failure!r}")
    return competence


def majority_share(evaluation_folder: str | Path) -> tuple[float, float]:
    """The student's accuracy and the majority class's share of the rows it was evaluated on (the accuracy of
    always answering the commonest target)."""
    folder = Path(evaluation_folder)
    accuracy = read_json(folder / METRICS, "evaluate that student again")["accuracy"]
    with (folder / PREDICTIONS).open(encoding="utf-8") as handle:
        targets = [str(json.loads(line).get("target")) for line in handle if line.strip()]
    return accuracy, majority_accuracy(targets) or 0.0


def teacher_problem(competence: Competence, check: dict[str, Any]) -> str | None:
    best = check["accuracy"][check["best"]]
    known = [value for value in (check.get("chance_accuracy"), check.get("majority_accuracy")) if value is not None]
    chance = max(known) if known else None
    if chance is not None and best < chance + competence.student_margin + competence.teacher_margin:
        return (f"the teacher reaches {100 * best:.1f}% on the {check.get('split', 'validation')} rows, chance (or the majority label) is "
                f"{100 * chance:.1f}%: it cannot "
                f"beat a competent student (chance + {100 * competence.student_margin:g}) by "
                f"{100 * competence.teacher_margin:g} points; fine-tune it on more rows (teacher.finetune)")
    return None


def student_problem(competence: Competence, evaluation_folder: str | Path,
                    check: dict[str, Any] | None) -> str | None:
    accuracy, majority = majority_share(evaluation_folder)
    if accuracy < majority + competence.student_margin:
        return (f"the standard student reaches {100 * accuracy:.1f}%, the majority class {100 * majority:.1f}%: "
                f"under {100 * competence.student_margin:g} points above it, it hardly learns the task and every "
                "mode will look alike; train longer, on more rows, or a larger student")
    if check is not None:
        teacher = check["accuracy"][check["best"]]
        if teacher < accuracy + competence.teacher_margin:
            return (f"the teacher ({100 * teacher:.1f}%) is under {100 * competence.teacher_margin:g} points above "
                    f"the standard student ({100 * accuracy:.1f}%): it has little to teach; use a stronger teacher "
                    "or fewer labelled rows for the student")
    return None


def words_problem(rationale_folder: str | Path, fewest: int = 20) -> str | None:
    """Whether the teacher's words hold the gold answer more often than random words drawn from the same input segments in the same counts,
    where the answer occurs in enough inputs to tell (e-SNLI's labels never do; CQA's choices do)."""
    from tokendistill.analysis import analyze_folder

    overlap = analyze_folder(rationale_folder)[0]["answer_overlap"]["gold"]["all"]
    if overlap["answer_in_input"] < fewest:
        log.info("%s: the answer is in too few inputs (%d) to compare the words with random ones",
                 rationale_folder, overlap["answer_in_input"])
        return None
    words, random_words = overlap["any"]["rationale"], overlap["any"]["random_same_parts"]
    if words is not None and random_words is not None and words <= random_words:
        return (f"the teacher's words hold the answer in {100 * words:.1f}% of examples, random words of the same "
                f"input parts in {100 * random_words:.1f}%: they carry no answer information; check the teacher "
                "and its target (tokendistill analyze)")
    return None


def judge(competence: Competence, task: str, problem: str | None) -> None:
    if problem is None:
        return
    if competence.on_failure == "stop":
        raise UserError(f"[{task}] competence check: {problem} (the grid stops here, its finished cells kept; "
                        "`competence: {on_failure: warn}` in the YAML goes on anyway)")
    log.warning("[%s] competence check: %s", task, problem)
    print(f"[{task}] WARNING competence check: {problem}", flush=True)
