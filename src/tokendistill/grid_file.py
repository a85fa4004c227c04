"""An experiment YAML read as possibly damaged: every key checked, local paths made absolute, and every stage's
config built (grid.plan) before any compute, so that a typo fails in one line first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokendistill.competence import parse_competence
from tokendistill.config import top_k_problem
from tokendistill.errors import UserError
from tokendistill.grid import Experiment, TaskSpec, plan
from tokendistill.options import load_yaml
from tokendistill.training.modes import MODES


def _path(value: str | None, base: Path) -> str | None:
    """Local paths absolute (so run folders can be compared and resumed from anywhere); hub ids untouched."""
    if value is None:
        return None
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        relative = base / candidate
        if relative.exists() or str(value).startswith("."):
            candidate = relative
    return str(candidate.resolve()) if candidate.exists() or candidate.is_absolute() else value


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_task_spec(spec: TaskSpec, path: str | Path) -> None:
    where = f"{path}: task {spec.name!r}"
    if not isinstance(spec.train_sizes, list) or not spec.train_sizes or not all(
            _whole(size) and size > 0 for size in spec.train_sizes):
        raise UserError(f"{where}: train_sizes should be a list of positive whole numbers, e.g. [1000], "
                        f"got {spec.train_sizes!r}")
    if not (_whole(spec.valid_limit) and spec.valid_limit > 0):
        raise UserError(f"{where}: valid_limit should be a positive whole number, got {spec.valid_limit!r}")
    if spec.valid_split is not None and spec.valid_split.partition("[")[0] == spec.test_split:
        raise UserError(f"{where}: valid_split {spec.valid_split!r} is the test split; the competence checks "
                        "never read test rows")
    if spec.test_limit is not None and not (_whole(spec.test_limit) and spec.test_limit > 0):
        raise UserError(f"{where}: test_limit should be a positive whole number, got {spec.test_limit!r}")
    for key in ("name", "train_split", "test_split"):
        if not isinstance(getattr(spec, key), str):
            raise UserError(f"{where}: {key} should be text, got {getattr(spec, key)!r}")


def load_experiment(path: str | Path, output: str | None = None, device: str | None = None) -> Experiment:
    values = load_yaml(path)
    base = Path(path).resolve().parent
    known = {"output", "tasks", "teacher", "student", "modes", "top_k", "targets", "seeds", "device", "controls",
             "control_modes", "competence", "effect_of_interest", "primary"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    for key in ("tasks", "teacher", "student", "modes"):
        if key not in values:
            raise UserError(f"{path}: missing key {key!r}")
    for key, kind in (("tasks", list), ("teacher", dict), ("student", dict), ("modes", list), ("top_k", list),
                      ("targets", list), ("seeds", list), ("controls", list), ("control_modes", list),
                      ("primary", list)):
        if key in values and not isinstance(values[key], kind):
            shape = "a list, e.g. [a, b]" if kind is list else "a mapping with a 'model' key"
            raise UserError(f"{path}: {key} should be {shape}, got {values[key]!r}")
    tasks = [_task_spec(raw, path, base) for raw in values["tasks"]]
    for mode in values["modes"]:
        MODES.get(mode)
    controls, control_modes = _controls(values, path)
    effect = _declarations(values, path)
    teacher, student = _models(values, path, base)
    output_folder = output or values.get("output")
    if not output_folder:
        raise UserError(f"{path}: give an output folder (key 'output' or --output)")
    experiment = Experiment(
        output=str(Path(output_folder).expanduser().resolve()),
        tasks=tasks,
        teacher=teacher,
        student=student,
        modes=list(values["modes"]),
        top_k=[_number(k, "top_k", path) for k in values.get("top_k", [10])],
        targets=list(values.get("targets", ["teacher"])),
        seeds=[_seed(s, path) for s in values.get("seeds", [0])],
        device=device or values.get("device", "auto"),
        controls=controls,
        control_modes=control_modes,
        competence=parse_competence(values.get("competence"), path),
        effect_of_interest=None if effect is None else float(effect),
        primary=[str(item) for item in values.get("primary", [])],
    )
    plan(experiment)  # every stage config is built now, so that a typo fails before any compute
    return experiment


def _task_spec(raw: Any, path: str | Path, base: Path) -> TaskSpec:
    if not isinstance(raw, (str, dict)):
        raise UserError(f"{path}: a task entry should be a name or a mapping, got {raw!r}")
    raw = {"name": raw} if isinstance(raw, str) else dict(raw)
    try:
        spec = TaskSpec(**raw)
    except TypeError as error:
        raise UserError(f"{path}: task entry {raw}: {error}") from None
    _check_task_spec(spec, path)
    spec.data = _path(spec.data, base)
    return spec


def _controls(values: dict[str, Any], path: str | Path) -> tuple[list[str], list[str]]:
    """The control methods (checked by their registry) and the modes they train (each reading the words)."""
    controls = list(values.get("controls", []))
    reading = [mode for mode in values["modes"] if MODES.get(mode).needs_rationales]
    if controls:
        from tokendistill.attribution.methods import METHODS

        for method in controls:
            METHODS.get(method)
        if not reading:
            raise UserError(f"{path}: controls train `multitask` cells; add multitask to modes")
    default_controlled = ["multitask"] if "multitask" in reading else reading[:1]
    control_modes = list(values.get("control_modes", default_controlled))
    for mode in control_modes:
        if mode not in reading:
            raise UserError(f"{path}: control_modes: {mode!r} should be one of the grid's modes that read the "
                            "teacher's words (multitask, multitask_kd, ...)")
    return controls, control_modes


def _declarations(values: dict[str, Any], path: str | Path) -> float | None:
    """The effect of interest (points), the primary comparisons checked for their form."""
    for comparison in values.get("primary", []):
        if not isinstance(comparison, str) or comparison.count(" vs ") != 1:
            raise UserError(f"{path}: primary: {comparison!r} should read 'CELL vs CELL', cells named as the results "
                            "table names them, e.g. 'multitask saliency vs multitask random_matched'")
    effect = values.get("effect_of_interest")
    if effect is not None and (isinstance(effect, bool) or not isinstance(effect, (int, float)) or effect <= 0):
        raise UserError(f"{path}: effect_of_interest should be a positive number of points, e.g. 2, got {effect!r}")
    return effect


def _models(values: dict[str, Any], path: str | Path, base: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The teacher and student blocks, their model paths made absolute; several students are one more factor."""
    teacher, student = dict(values["teacher"]), dict(values["student"])
    for part, where in ((teacher, "teacher"), (student, "student")):
        if "model" not in part:
            raise UserError(f"{path}: {where}.model is required")
    teacher["model"] = _path(teacher["model"], base)
    models = student["model"] if isinstance(student["model"], list) else [student["model"]]
    student["model"] = [_path(model, base) for model in models]
    return teacher, student


def _number(value: Any, key: str, path: str | Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{path}: {key} should hold numbers, got {value!r}")
    if problem := top_k_problem(float(value)):
        raise UserError(f"{path}: {key} {value}: must be {problem}")
    return float(value)


def _seed(value: Any, path: str | Path) -> int:
    if not (_whole(value) and value >= 0):
        raise UserError(f"{path}: seeds should be whole numbers >= 0, got {value!r}")
    return int(value)
