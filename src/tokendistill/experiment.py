"""`tokendistill run EXPERIMENT.yaml`: every cell of a grid (tokendistill.grid), its stages in order.

The runner only composes the stages. Per task it optionally fine-tunes the teacher (shared by every cell),
checks the teacher on the test split, extracts the teacher's rationales once per answer target at the
largest k (smaller k are re-selected from the stored scores), then trains and evaluates one student per
cell. Every stage resumes and skips finished work, so the same command continues an interrupted grid and
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
    TEACHER_CHECK,
    TEACHER_CHECK_BEFORE_FOLDER,
    of_experiment,
)
from tokendistill.competence import judge, student_problem, teacher_problem, words_problem
from tokendistill.config import build, device_problem, option, write_config
from tokendistill.folders import locked, read_json
from tokendistill.grid import Experiment, TaskPlan, load_experiment, plan, select_cells
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


def _read_teacher_check(task_plan: TaskPlan) -> dict[str, Any] | None:
    if not task_plan.teacher_eval:
        return None
    path = Path(task_plan.teacher_eval["output"]) / TEACHER_CHECK
    return read_json(path, "delete that folder to check the teacher again") if path.exists() else None


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


def _run_cells(config: RunConfig, experiment: Experiment, plans: list[TaskPlan], progress: bool) -> Path:
    from tokendistill.attribution import extract
    from tokendistill.evaluation import evaluate
    from tokendistill.teacher_eval import TeacherEvalConfig, finished_check, teacher_eval
    from tokendistill.training import train

    root = Path(experiment.output)
    cells = [cell for task_plan in plans for cell in task_plan.cells]
    header = _plan_header(config.experiment)
    _grid_file(root, GRID_PLAN, config.experiment).write_text(
        header + yaml.safe_dump(dataclasses.asdict(experiment), sort_keys=False), encoding="utf-8"
    )
    done = 0
    for task_plan in plans:
        name = task_plan.spec.name
        if task_plan.finetune is not None:
            before = {**task_plan.teacher_eval, "teacher": task_plan.finetune.student,
                      "output": str(Path(task_plan.teacher_eval["output"]).with_name(TEACHER_CHECK_BEFORE_FOLDER))}
            if finished_check(before_check := build(TeacherEvalConfig, before)) is None:
                print(f"[{name}] checking the teacher before fine-tuning", flush=True)
                teacher_eval(before_check, progress=progress)
            print(f"[{name}] fine-tuning the teacher -> {task_plan.finetune.output}", flush=True)
            train(task_plan.finetune, progress=progress)
        # An empty teacher_eval: --only kept no cell that reads the teacher.
        check = build(TeacherEvalConfig, dict(task_plan.teacher_eval)) if task_plan.teacher_eval else None
        if check is not None and finished_check(check) is None:
            print(f"[{name}] checking the teacher on {task_plan.spec.test_split}", flush=True)
            teacher_eval(check, progress=progress)
        teacher_check = _read_teacher_check(task_plan)
        if teacher_check:
            judge(experiment.competence, name, teacher_problem(experiment.competence, teacher_check))
        for (method, target), extract_config in task_plan.extractions.items():
            print(f"[{name}] extracting rationales ({method}, target {target}) -> {extract_config.output}", flush=True)
            extract(extract_config, progress=progress)
            if method not in experiment.controls:
                judge(experiment.competence, name, words_problem(extract_config.output))
        for cell in task_plan.cells:
            done += 1
            print(f"[{done}/{len(cells)}] {json.dumps(cell.key)}", flush=True)
            train(cell.train, progress=progress)
            evaluate(cell.evaluate, progress=False)  # returns at once where the cell's evaluation is done
            write_json_atomic(Path(cell.train.output).parent / CELL_INFO, cell.key)
            write_results(root)
            if cell.mode == "standard":
                judge(experiment.competence, name, student_problem(experiment.competence, cell.evaluate.output,
                                                                    teacher_check))
    write_config(config, root, _grid_file(root, RUN_CONFIG, config.experiment).name)
    table = write_results(root)
    print(table)
    return root
