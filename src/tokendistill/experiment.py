"""`tokendistill run EXPERIMENT.yaml`: every cell of a grid (tokendistill.grid), its stages in order.

The runner only composes the stages. Per task it optionally fine-tunes the teacher (shared by every cell),
checks the teacher on the validation rows, extracts the teacher's rationales once per answer target at the
largest k (smaller k are re-selected from the stored scores), then trains and evaluates one student per
cell. Every check that can stop the grid (competence) reads validation rows only; the test rows are scored
only once those checks have passed, for the planned cells (and the teacher, for the table). Every stage resumes and skips finished work, so the same command continues an interrupted grid and
re-running a finished one recomputes nothing. The results table is rewritten after every cell.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokendistill.artefacts import (
    CELL_INFO,
    GRID_PLAN,
    RUN_CONFIG,
    TEACHER_CHECK_BEFORE_FOLDER,
    of_experiment,
)
from tokendistill.competence import judge, student_problem, teacher_problem, words_problem
from tokendistill.config import device_problem, write_config
from tokendistill.errors import UserError
from tokendistill.folders import locked, write_file
from tokendistill.grid import Experiment, TaskPlan, plan, select_cells
from tokendistill.grid_file import load_experiment
from tokendistill.options import build, option
from tokendistill.rationales import write_json_atomic
from tokendistill.results import FACTORS, write_results

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class RunConfig:
    experiment: str = option(dataclasses.MISSING, "experiment YAML file", positional=True)
    output: str | None = option(None, "grid folder (default: the YAML's output)")
    device: str | None = option(None, "auto, cpu or cuda for every stage (default: the YAML's device); not part "
                                      "of a cell's identity, so a grid begun on one device resumes on another", check=device_problem)
    dry_run: bool = option(False, "list the cells and exit")
    only: str | None = option(None, "run only the cells matching every clause, e.g. 'mode=standard,dss seed=0' "
                                    f"(factors: {', '.join(FACTORS)}, seed); the rest stay as they are")


def run_experiment(config: RunConfig, progress: bool = True) -> Path:
    experiment = load_experiment(config.experiment, config.output, config.device)
    plans = select_cells(plan(experiment), config.only)
    root = Path(experiment.output)
    cells = [cell for task_plan in plans for cell in task_plan.cells]
    if config.dry_run:
        for cell in cells:
            print(json.dumps(cell.key))
        print(f"{len(cells)} cells")
        return root
    # One grid run at a time per folder (its cells' stages lock their own folders too).
    with locked(root):
        return _run_cells(config, experiment, plans, progress)


def _plan_header(source: str | Path) -> str:
    return f"# tokendistill run {Path(source).resolve()}\n"


def _grid_file(root: Path, name: str, source: str | Path) -> Path:
    """Where this experiment's grid file ``name`` (its plan, its run options) goes: ``name``, or, where another
    experiment YAML planned this folder first (two grids that share a teacher, its rationales and some cells),
    its of_experiment name, so that neither overwrites the other's record. A plan without the header comes from
    a version that had one YAML per folder: it is this experiment's."""
    plan_file = root / GRID_PLAN
    if plan_file.exists():
        with plan_file.open(encoding="utf-8", errors="replace") as handle:
            line = handle.readline()
        if line != _plan_header(source) and line.startswith("# tokendistill run "):
            return root / of_experiment(name, Path(source).stem)
    return root / name


def _competence_rows(task: str, split: str, data: str | None, options: Any) -> bool:
    """Whether the validation split has rows to check on (a small data set may have none after the training
    rows); without them the check is skipped, with a note, rather than read test rows."""
    from tokendistill.tasks import get_task, iter_examples

    spec = get_task(task, input_column=options.input_column, label_column=options.label_column)
    try:
        next(iter_examples(spec, split, data, limit=1))
    except (UserError, StopIteration) as error:
        print(f"[{task}] competence check skipped: no validation rows in {split!r} ({error})", flush=True)
        return False
    return True


def _teacher_stages(task_plan: TaskPlan, progress: bool) -> dict[str, Any] | None:
    """Fine-tune the teacher (its base model checked first) and check it on the validation rows; returns that
    check, or None where no check ran."""
    from tokendistill.teacher_eval import TeacherEvalConfig, finished_check, teacher_eval
    from tokendistill.training import train

    name, competence = task_plan.spec.name, task_plan.teacher_competence
    if competence and not _competence_rows(name, competence["split"], competence["data"],
                                           build(TeacherEvalConfig, dict(competence))):
        competence = {}
    if task_plan.finetune is not None and competence:
        before = {**competence, "teacher": task_plan.finetune.student,
                  "output": str(Path(competence["output"]).with_name(TEACHER_CHECK_BEFORE_FOLDER))}
        if finished_check(before_check := build(TeacherEvalConfig, before)) is None:
            print(f"[{name}] checking the teacher before fine-tuning", flush=True)
            teacher_eval(before_check, progress=progress)
    if task_plan.finetune is not None:
        print(f"[{name}] fine-tuning the teacher -> {task_plan.finetune.output}", flush=True)
        train(task_plan.finetune, progress=progress)
    if not competence:
        return None
    check = build(TeacherEvalConfig, dict(competence))
    if finished_check(check) is None:
        print(f"[{name}] checking the teacher on the validation rows ({check.split})", flush=True)
    return teacher_eval(check, progress=progress)


def _teacher_test_check(task_plan: TaskPlan, progress: bool) -> None:
    """The teacher's accuracy on the test rows, for the table: run once, when the first test row is scored."""
    from tokendistill.teacher_eval import TeacherEvalConfig, finished_check, teacher_eval

    if not task_plan.teacher_eval:
        return
    check = build(TeacherEvalConfig, dict(task_plan.teacher_eval))
    if finished_check(check) is None:
        print(f"[{task_plan.spec.name}] checking the teacher on {task_plan.spec.test_split}", flush=True)
        teacher_eval(check, progress=progress)


def _run_cells(config: RunConfig, experiment: Experiment, plans: list[TaskPlan], progress: bool) -> Path:
    from tokendistill.attribution.extract import extract
    from tokendistill.evaluation import evaluate
    from tokendistill.training import train

    root = Path(experiment.output)
    cells = [cell for task_plan in plans for cell in task_plan.cells]
    header = _plan_header(config.experiment)
    write_file(_grid_file(root, GRID_PLAN, config.experiment),
               header + yaml.safe_dump(dataclasses.asdict(experiment), sort_keys=False))
    done = 0
    for task_plan in plans:
        name = task_plan.spec.name
        check = _teacher_stages(task_plan, progress)
        if check is not None:
            judge(experiment.competence, name, teacher_problem(experiment.competence, check))
        for (method, target), extract_config in task_plan.extractions.items():
            print(f"[{name}] extracting rationales ({method}, target {target}) -> {extract_config.output}", flush=True)
            extract(extract_config, progress=progress)
            if method not in experiment.controls:
                judge(experiment.competence, name, words_problem(extract_config.output))
        for cell in task_plan.cells:
            done += 1
            print(f"[{done}/{len(cells)}] {json.dumps(cell.key)}", flush=True)
            train(cell.train, progress=progress)
            if cell.competence is not None and _competence_rows(name, cell.competence.split, cell.competence.data,
                                                                cell.competence):
                evaluate(cell.competence, progress=False)
                judge(experiment.competence, name, student_problem(experiment.competence, cell.competence.output,
                                                                    check))
            # Test rows only now: every competence check that could stop the grid has passed.
            _teacher_test_check(task_plan, progress)
            evaluate(cell.evaluate, progress=False)  # returns at once where the cell's evaluation is done
            write_json_atomic(Path(cell.train.output).parent / CELL_INFO, cell.key)
            write_results(root)
    write_config(config, root, _grid_file(root, RUN_CONFIG, config.experiment).name)
    table = write_results(root)
    print(table)
    return root
