"""A grid as a user writes it (the experiment YAML) and as it runs: tasks x students x modes x k x targets x task
markers x training sizes x seeds, each cell a resolved train and evaluate config, every stage's config built (and
checked) before any compute."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokendistill.artefacts import COMPETENCE_EVAL_FOLDER, TEACHER_CHECK_FOLDER, TEACHER_CHECK_VALID_FOLDER
from tokendistill.cells import BASELINE_MODE, FACTORS, Naming, cell_folder, marker_factor
from tokendistill.competence import Competence
from tokendistill.config import EvaluateConfig, ExtractConfig, TrainConfig
from tokendistill.errors import UserError
from tokendistill.options import build, field_defaults, field_names
from tokendistill.student import TaskMarker
from tokendistill.training.modes import MODES, TRAIN_CONFIGS, train_config

_EXTRACT_DEFAULTS = field_defaults(ExtractConfig)


@dataclass(kw_only=True)
class TaskSpec:
    name: str
    data: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    train_sizes: list[int] = field(default_factory=lambda: [1000])
    test_limit: int | None = None
    input_column: str | None = None
    label_column: str | None = None
    test_fraction: float | None = None
    # Where the competence checks read (never the test split): a split, or a slice of one, that no stage trains
    # on. Default: the training split's rows after every row the student or the teacher trains on.
    valid_split: str | None = None
    valid_limit: int = 500


@dataclass(kw_only=True)
class Experiment:
    output: str
    tasks: list[TaskSpec]
    teacher: dict[str, Any]
    student: dict[str, Any]
    modes: list[str]
    top_k: list[float]
    targets: list[str]
    seeds: list[int]
    device: str = "auto"
    # Attribution methods whose words also train the grid's `multitask` cells, as controls (e.g. `random`:
    # input words without the teacher's knowledge).
    controls: list[str] = field(default_factory=list)
    # The modes whose cells the controls train too (each must read the teacher's words).
    control_modes: list[str] = field(default_factory=lambda: ["multitask"])
    competence: Competence = field(default_factory=lambda: Competence())
    # What the grid was designed to decide, declared before any test row is scored: the smallest effect (points)
    # worth finding, and the comparisons the verdict rests on ("a vs b", cells named as in the results table).
    effect_of_interest: float | None = None
    primary: list[str] = field(default_factory=list)


@dataclass
class Cell:
    task: str
    size: int
    mode: str
    method: str | None
    k: float | None
    target: str | None
    seed: int
    train: TrainConfig
    evaluate: EvaluateConfig
    student: str
    marker: str | None = None  # the multitask rows' --task-marker where it is not the paper's
    # The competence check's evaluation on the validation rows (the first seed's standard cells), before any test row.
    competence: EvaluateConfig | None = None

    @property
    def key(self) -> dict[str, Any]:
        """The cell's factors, named as cells.FACTORS declares them (the table's columns, cell.json's keys)."""
        return {name: getattr(self, name) for name in (*FACTORS, "seed")}


@dataclass
class TaskPlan:
    spec: TaskSpec
    finetune: TrainConfig | None
    teacher_eval: dict[str, Any]
    extractions: dict[tuple[str, str], ExtractConfig]  # by (method, target)
    cells: list[Cell]
    teacher_competence: dict[str, Any] = field(default_factory=dict)  # the teacher check on the validation rows


def _common(spec: TaskSpec, device: str) -> dict[str, Any]:
    return {"task": spec.name, "data": spec.data, "input_column": spec.input_column,
            "label_column": spec.label_column, "test_fraction": spec.test_fraction, "device": device}


def plan(experiment: Experiment) -> list[TaskPlan]:
    root = Path(experiment.output)
    plans = []
    rationale_modes = [m for m in experiment.modes if MODES.get(m).needs_rationales]
    for spec in experiment.tasks:
        if spec.test_split == spec.train_split:
            raise UserError(f"task {spec.name}: the test split must differ from the training split")
        common = _common(spec, experiment.device)
        task_root = root / spec.name
        teacher_model = experiment.teacher["model"]
        finetune = None
        if experiment.teacher.get("finetune"):
            options = dict(experiment.teacher["finetune"])
            # The teacher learns on the training split only; nothing of the test split reaches it.
            finetune = build(TrainConfig, {**common, **options, "student": teacher_model, "mode": BASELINE_MODE,
                                           "split": spec.train_split, "output": str(task_root / "teacher")})
            teacher_model = finetune.output
        extract_options = dict(experiment.teacher.get("extract", {}))
        method = extract_options.get("method", _EXTRACT_DEFAULTS["method"])
        extractions = {}
        if rationale_modes:
            for chosen in (method, *experiment.controls):
                for target in experiment.targets:
                    # The main method keeps the folder name it had before controls existed (grids resume).
                    suffix = "" if chosen == method else f"-{chosen}"
                    extractions[chosen, target] = build(ExtractConfig, {
                        **common, **extract_options, "method": chosen, "teacher": teacher_model, "target": target,
                        "split": spec.train_split, "limit": max(spec.train_sizes), "top_k": max(experiment.top_k),
                        "output": str(task_root / f"rationales-{target}{suffix}"),
                    })
        valid = valid_split(spec, finetune)
        # The grid owns its checks' and evaluations' folders: one of another teacher or student (retrained), or of
        # other evaluate options, is made again (overwrite), as the grid's results must describe the cells as planned.
        teacher_eval = {**common, "teacher": teacher_model, "split": spec.test_split, "limit": spec.test_limit,
                        "output": str(task_root / TEACHER_CHECK_FOLDER), "overwrite": True,
                        **{k: v for k, v in extract_options.items()
                           if k in ("batch_size", "max_input_length", "max_new_tokens", "prompt_suffix", "chat_template")}}
        train_options = dict(experiment.student.get("train", {}))
        markers = _markers(train_options.pop("task_marker", TaskMarker.ENCODER.value))
        evaluate_options = dict(experiment.student.get("evaluate", {}))
        cells = []
        students = experiment.student["model"]
        # Seeds outermost: a grid cut short still holds a complete comparison for its first seeds.
        # `standard` first within a seed: the competence check reads it before the other modes spend time.
        modes = sorted(experiment.modes, key=lambda name: name != BASELINE_MODE)
        for seed, size, student_model, mode in itertools.product(experiment.seeds, spec.train_sizes, students, modes):
            uses_rationales = MODES.get(mode).needs_rationales
            methods = ([method, *experiment.controls] if mode in experiment.control_modes else [method]
                       ) if uses_rationales else [None]
            # A task marker places `predict:` / `explain:`; a mode without them (standard) has one layout.
            mode_markers = markers if MODES.get(mode).predict_prefix else [TaskMarker.ENCODER.value]
            for k, target, chosen, marker in itertools.product(experiment.top_k if uses_rationales else [None],
                                                               experiment.targets if uses_rationales else [None],
                                                               methods, mode_markers):
                key = {"task": spec.name, "student": Path(student_model).name, "size": size, "mode": mode,
                       "method": chosen,
                       "k": k, "target": target, "marker": marker_factor(marker), "seed": seed}
                folder = cell_folder(root, key, Naming(main_method=method, several_students=len(students) > 1))
                train = train_config({
                    **common, **options_of(mode, train_options), "task_marker": marker, "student": student_model,
                    "init": experiment.student.get("init", "pretrained"), "mode": mode, "seed": seed,
                    "split": spec.train_split, "limit": size, "output": str(folder / "student"),
                    "rationales": extractions[chosen, target].output if uses_rationales else None,
                    "top_k": k if uses_rationales and k != max(experiment.top_k) else None,
                    **({"teacher": teacher_model} if MODES.get(mode).needs_teacher else {}),
                })
                evaluate = build(EvaluateConfig, {
                    **common, "overwrite": True, **evaluate_options, "model": train.output, "split": spec.test_split,
                    "limit": spec.test_limit, "output": str(folder / "eval"),
                })
                # The competence check reads the first seed's standard students on the validation rows.
                competence = dataclasses.replace(evaluate, split=valid, limit=spec.valid_limit, output=str(
                    folder / COMPETENCE_EVAL_FOLDER)) if valid and mode == BASELINE_MODE and seed == experiment.seeds[0] else None
                cells.append(Cell(**key, train=train, evaluate=evaluate, competence=competence))
        teacher_competence = {**teacher_eval, "split": valid, "limit": spec.valid_limit,
                              "output": str(task_root / TEACHER_CHECK_VALID_FOLDER)} if valid else {}
        plans.append(TaskPlan(spec, finetune, teacher_eval, extractions, cells, teacher_competence))
    return plans


def options_of(mode: str, options: dict[str, Any]) -> dict[str, Any]:
    """The grid's training options that ``mode`` takes: an option of other modes only (``kd_weight`` beside
    `standard` cells) is theirs, not a mistake; one that no mode knows is kept, to be refused in one line."""
    own = field_names(MODES.get(mode).config)
    of_some_mode = {name for cls in TRAIN_CONFIGS.sections() for name in field_names(cls)}
    return {name: value for name, value in options.items() if name in own or name not in of_some_mode}


def valid_split(spec: TaskSpec, finetune: TrainConfig | None) -> str | None:
    """The split the competence checks read: the task's own, or the training split's rows after every row that a
    student (the first max(train_sizes)) or the fine-tuned teacher (its limit) trains on. None where none is
    left (a teacher fine-tuned on the whole split): the checks are then not run, as they never read test rows."""
    if spec.valid_split:
        return spec.valid_split
    if spec.test_fraction is not None or (finetune is not None and finetune.limit is None):
        return None
    first = max([*spec.train_sizes, finetune.limit if finetune is not None else 0])  # type: ignore[list-item]
    return f"{spec.train_split}[{first}:{first + spec.valid_limit}]"


def _markers(value: Any) -> list[str]:
    """student.train.task_marker: one layout, or a list of them (one more grid factor: the same multitask cells in
    each layout, paired in the results table against the paper's)."""
    markers = value if isinstance(value, list) else [value]
    if not markers or not all(isinstance(marker, str) for marker in markers) or len(set(markers)) < len(markers):
        raise UserError(f"student.train.task_marker should be a marker or a list of distinct ones, e.g. "
                        f"[encoder, shared_prompt], got {value!r}")
    return markers


_FACTORS = (*FACTORS, "seed")


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(wanted) == value
        except ValueError:
            return False
    return str(value) == wanted


def select_cells(plans: list[TaskPlan], only: str | None) -> list[TaskPlan]:
    """The plans cut to the cells that match ``only`` ("factor=a,b factor=c"); a task left without cells is
    dropped whole, an extraction no kept cell reads is not run, and a teacher no kept cell reads (standard
    and dss cells only) is neither fine-tuned nor checked."""
    if not only:
        return plans
    clauses: dict[str, list[str]] = {}
    for clause in only.replace(";", " ").split():
        factor, equals, values = clause.partition("=")
        if not equals or not values or factor not in _FACTORS:
            raise UserError(f"--only: {clause!r} should read factor=value[,value] with a factor among "
                            f"{', '.join(_FACTORS)}")
        clauses.setdefault(factor, []).extend(v for v in values.split(",") if v)
    cells = [cell for task_plan in plans for cell in task_plan.cells]
    for factor, wanted in clauses.items():
        present = {cell.key[factor] for cell in cells}
        unknown = [w for w in wanted if not any(_matches(value, w) for value in present)]
        if unknown:
            shown = ", ".join(sorted(str(value) for value in present))
            raise UserError(f"--only: no cell has {factor}={','.join(unknown)}; this grid's values: {shown}")
    selected = []
    for task_plan in plans:
        kept = [cell for cell in task_plan.cells
                if all(any(_matches(cell.key[f], w) for w in wanted) for f, wanted in clauses.items())]
        if kept:
            read = {(cell.method, cell.target) for cell in kept}
            extractions = {key: c for key, c in task_plan.extractions.items() if key in read}
            needs_teacher = bool(extractions) or any(cell.train.other_models() for cell in kept)
            teacher = {} if needs_teacher else {"finetune": None, "teacher_eval": {}, "teacher_competence": {}}
            selected.append(dataclasses.replace(task_plan, cells=kept, extractions=extractions, **teacher))
    return selected

