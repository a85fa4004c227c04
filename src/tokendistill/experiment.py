"""`tokendistill run EXPERIMENT.yaml`: a grid of tasks x modes x k x targets x training sizes x seeds.

The runner only composes the stages. Per task it optionally fine-tunes the teacher (shared by every cell),
checks the teacher on the test split, extracts the teacher's rationales once per answer target at the
largest k (smaller k are re-selected from the stored scores), then trains and evaluates one student per
cell. Every stage resumes and skips finished work, so the same command continues an interrupted grid and
re-running a finished one recomputes nothing. The results table is rewritten after every cell.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tokendistill.artefacts import (
    CELL_INFO,
    GRID_PLAN,
    METRICS,
    PREDICTIONS,
    RUN_CONFIG,
    STUDENT_INFO,
    TEACHER_CHECK,
    of_experiment,
)
from tokendistill.config import (
    EvaluateConfig,
    ExtractConfig,
    TrainConfig,
    build,
    device_problem,
    field_defaults,
    load_yaml,
    option,
    top_k_problem,
    write_config,
)
from tokendistill.errors import UserError
from tokendistill.folders import locked, read_json
from tokendistill.rationales import write_json_atomic
from tokendistill.results import FACTORS, PAPER_MARKER, marker_factor, write_results
from tokendistill.tasks import majority_accuracy
from tokendistill.training.modes import MODES

log = logging.getLogger(__name__)

_EXTRACT_DEFAULTS = field_defaults(ExtractConfig)


@dataclass(kw_only=True)
class RunConfig:
    experiment: str = option(dataclasses.MISSING, "experiment YAML file", positional=True)
    output: str | None = option(None, "grid folder (default: the YAML's output)")
    device: str | None = option(None, "auto, cpu or cuda for every stage (default: the YAML's device); not part "
                                      "of a cell's identity, so a grid begun on one device resumes on another", check=device_problem)
    dry_run: bool = option(False, "list the cells and exit")
    only: str | None = option(None, "run only the cells matching every clause, e.g. 'mode=standard,dss seed=0' "
                                    "(factors: task, student, size, mode, k, target, seed); the rest stay as they are")


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
    competence: Competence = field(default_factory=lambda: Competence())


@dataclass(kw_only=True)
class Competence:
    """What the grid's setting must hold for its comparison to mean anything, checked as soon as it can be.

    A student that cannot learn the task, or a teacher no better than it, makes every mode look alike; the
    runner stops the grid there (``on_failure: stop``, the default), its finished work kept, or says so and
    goes on (``warn``: a grid run to see what happens anyway).
    """

    student_margin: float = 0.15  # the `standard` student above the majority class of the test rows
    teacher_margin: float = 0.10  # the teacher above the `standard` student, same test rows
    on_failure: str = "stop"


def _competence(raw: Any, path: str | Path) -> Competence:
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
    if spec.test_limit is not None and not (_whole(spec.test_limit) and spec.test_limit > 0):
        raise UserError(f"{where}: test_limit should be a positive whole number, got {spec.test_limit!r}")
    for key in ("name", "train_split", "test_split"):
        if not isinstance(getattr(spec, key), str):
            raise UserError(f"{where}: {key} should be text, got {getattr(spec, key)!r}")


def load_experiment(path: str | Path, output: str | None = None, device: str | None = None) -> Experiment:
    values = load_yaml(path)
    base = Path(path).resolve().parent
    known = {"output", "tasks", "teacher", "student", "modes", "top_k", "targets", "seeds", "device", "controls",
             "competence"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    for key in ("tasks", "teacher", "student", "modes"):
        if key not in values:
            raise UserError(f"{path}: missing key {key!r}")
    for key, kind in (("tasks", list), ("teacher", dict), ("student", dict), ("modes", list), ("top_k", list),
                      ("targets", list), ("seeds", list), ("controls", list)):
        if key in values and not isinstance(values[key], kind):
            shape = "a list, e.g. [a, b]" if kind is list else "a mapping with a 'model' key"
            raise UserError(f"{path}: {key} should be {shape}, got {values[key]!r}")
    tasks = []
    for raw in values["tasks"]:
        if not isinstance(raw, (str, dict)):
            raise UserError(f"{path}: a task entry should be a name or a mapping, got {raw!r}")
        raw = {"name": raw} if isinstance(raw, str) else dict(raw)
        try:
            spec = TaskSpec(**raw)
        except TypeError as error:
            raise UserError(f"{path}: task entry {raw}: {error}") from None
        _check_task_spec(spec, path)
        spec.data = _path(spec.data, base)
        tasks.append(spec)
    for mode in values["modes"]:
        MODES.get(mode)
    controls = list(values.get("controls", []))
    if controls:
        from tokendistill.attribution.methods import METHODS

        for method in controls:
            METHODS.get(method)
        if not any(MODES.get(mode).needs_rationales for mode in values["modes"]):
            raise UserError(f"{path}: controls train `multitask` cells; add multitask to modes")
    teacher, student = dict(values["teacher"]), dict(values["student"])
    for part, where in ((teacher, "teacher"), (student, "student")):
        if "model" not in part:
            raise UserError(f"{path}: {where}.model is required")
    teacher["model"] = _path(teacher["model"], base)
    # Several students make one more grid factor.
    models = student["model"] if isinstance(student["model"], list) else [student["model"]]
    student["model"] = [_path(model, base) for model in models]
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
        competence=_competence(values.get("competence"), path),
    )
    plan(experiment)  # every stage config is built now, so that a typo fails before any compute
    return experiment


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

    @property
    def key(self) -> dict[str, Any]:
        return {"task": self.task, "student": self.student, "size": self.size, "mode": self.mode,
                "method": self.method, "k": self.k, "target": self.target, "marker": self.marker, "seed": self.seed}


@dataclass
class TaskPlan:
    spec: TaskSpec
    finetune: TrainConfig | None
    teacher_eval: dict[str, Any]
    extractions: dict[tuple[str, str], ExtractConfig]  # by (method, target)
    cells: list[Cell]


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
            finetune = build(TrainConfig, {**common, **options, "student": teacher_model, "mode": "standard",
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
        # Controls train the mode they control for: multitask (or the first mode that reads rationales).
        controlled = "multitask" if "multitask" in rationale_modes else (rationale_modes or [None])[0]
        teacher_eval = {**common, "teacher": teacher_model, "split": spec.test_split, "limit": spec.test_limit,
                        "output": str(task_root / "teacher-eval"),
                        **{k: v for k, v in extract_options.items()
                           if k in ("batch_size", "max_input_length", "max_new_tokens", "prompt_suffix", "chat_template")}}
        train_options = dict(experiment.student.get("train", {}))
        markers = _markers(train_options.pop("task_marker", PAPER_MARKER), experiment.modes)
        evaluate_options = dict(experiment.student.get("evaluate", {}))
        cells = []
        students = experiment.student["model"]
        # Seeds outermost: a grid cut short still holds a complete comparison for its first seeds.
        # `standard` first within a seed: the competence check reads it before the other modes spend time.
        modes = sorted(experiment.modes, key=lambda name: name != "standard")
        for seed, size, student_model, mode in itertools.product(experiment.seeds, spec.train_sizes, students, modes):
            uses_rationales = MODES.get(mode).needs_rationales
            methods = ([method, *experiment.controls] if mode == controlled else [method]) if uses_rationales else [None]
            # A task marker places `predict:` / `explain:`; a mode without them (standard) has one layout.
            mode_markers = markers if MODES.get(mode).predict_prefix else [PAPER_MARKER]
            for k, target, chosen, marker in itertools.product(experiment.top_k if uses_rationales else [None],
                                                               experiment.targets if uses_rationales else [None],
                                                               methods, mode_markers):
                name = mode + (f"-k{k:g}-{target}" if uses_rationales else "")
                name += f"-{chosen}" if chosen and chosen != method else ""
                # The paper's layout keeps the folder name it had before the marker was a factor (grids resume).
                name += f"-{marker}" if marker != PAPER_MARKER else ""
                student_folder = f"{_slug(student_model)}/" if len(students) > 1 else ""
                folder = task_root / f"n{size}" / f"{student_folder}{name}" / f"seed{seed}"
                train = build(TrainConfig, {
                    **common, **train_options, "task_marker": marker, "student": student_model,
                    "init": experiment.student.get("init", "pretrained"), "mode": mode, "seed": seed,
                    "split": spec.train_split, "limit": size, "output": str(folder / "student"),
                    "rationales": extractions[chosen, target].output if uses_rationales else None,
                    "top_k": k if uses_rationales and k != max(experiment.top_k) else None,
                    "teacher": teacher_model if MODES.get(mode).needs_teacher else None,
                })
                evaluate = build(EvaluateConfig, {
                    **common, **evaluate_options, "model": train.output, "split": spec.test_split,
                    "limit": spec.test_limit, "output": str(folder / "eval"),
                })
                cells.append(Cell(spec.name, size, mode, chosen, k, target, seed, train, evaluate,
                                  Path(student_model).name, marker_factor(marker)))
        plans.append(TaskPlan(spec, finetune, teacher_eval, extractions, cells))
    return plans


def _markers(value: Any, modes: list[str]) -> list[str]:
    """student.train.task_marker: one layout, or a list of them (one more grid factor: the same multitask cells in
    each layout, paired in the results table against the paper's)."""
    markers = value if isinstance(value, list) else [value]
    if not markers or not all(isinstance(marker, str) for marker in markers) or len(set(markers)) < len(markers):
        raise UserError(f"student.train.task_marker should be a marker or a list of distinct ones, e.g. "
                        f"[encoder, shared_prompt], got {value!r}")
    if "shared_prompt" in markers and (kd := [m for m in modes if MODES.get(m).needs_teacher]):
        raise UserError(f"student.train.task_marker shared_prompt does not yet support {', '.join(kd)} (its teacher "
                        "term reads rows one by one); run those modes in a grid with the encoder marker")
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
            needs_teacher = bool(extractions) or any(cell.train.teacher for cell in kept)
            teacher = {} if needs_teacher else {"finetune": None, "teacher_eval": {}}
            selected.append(dataclasses.replace(task_plan, cells=kept, extractions=extractions, **teacher))
    return selected


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name)


def _evaluated(config: EvaluateConfig) -> bool:
    """Whether this student's evaluation is already on disk (same student, same settings)."""
    metrics_path = Path(config.output) / METRICS
    info_path = Path(config.model) / STUDENT_INFO
    if not (metrics_path.exists() and info_path.exists()):
        return False
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    identity = json.loads(info_path.read_text(encoding="utf-8")).get("identity")
    return (metrics.get("model_identity") == identity and metrics.get("limit") == config.limit
            and metrics.get("answer", "generation") == config.answer)


# ----- competence -------------------------------------------------------------------------------------------
def _read_teacher_check(task_plan: TaskPlan) -> dict[str, Any] | None:
    if not task_plan.teacher_eval:
        return None
    path = Path(task_plan.teacher_eval["output"]) / TEACHER_CHECK
    return read_json(path, "delete that folder to check the teacher again") if path.exists() else None


def majority_share(evaluation_folder: str | Path) -> tuple[float, float]:
    """The student's accuracy and the majority class's share of its test rows (the accuracy of always
    answering the commonest target)."""
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
        return (f"the teacher reaches {100 * best:.1f}% on the test rows, chance (or the majority label) is "
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
    """Whether the teacher's words hold the gold answer more often than position-matched random words,
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


def _judge(competence: Competence, task: str, problem: str | None) -> None:
    if problem is None:
        return
    if competence.on_failure == "stop":
        raise UserError(f"[{task}] competence check: {problem} (the grid stops here, its finished cells kept; "
                        "`competence: {on_failure: warn}` in the YAML goes on anyway)")
    log.warning("[%s] competence check: %s", task, problem)
    print(f"[{task}] WARNING competence check: {problem}", flush=True)


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
    from tokendistill.teacher_eval import TeacherEvalConfig, teacher_eval
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
                      "output": str(Path(task_plan.teacher_eval["output"]).with_name("teacher-eval-before"))}
            if not (Path(before["output"]) / TEACHER_CHECK).exists():
                print(f"[{name}] checking the teacher before fine-tuning", flush=True)
                teacher_eval(build(TeacherEvalConfig, before), progress=progress)
            print(f"[{name}] fine-tuning the teacher -> {task_plan.finetune.output}", flush=True)
            train(task_plan.finetune, progress=progress)
        # An empty teacher_eval: --only kept no cell that reads the teacher.
        if task_plan.teacher_eval and not (Path(task_plan.teacher_eval["output"]) / TEACHER_CHECK).exists():
            print(f"[{name}] checking the teacher on {task_plan.spec.test_split}", flush=True)
            teacher_eval(build(TeacherEvalConfig, dict(task_plan.teacher_eval)), progress=progress)
        teacher_check = _read_teacher_check(task_plan)
        if teacher_check:
            _judge(experiment.competence, name, teacher_problem(experiment.competence, teacher_check))
        for (method, target), extract_config in task_plan.extractions.items():
            print(f"[{name}] extracting rationales ({method}, target {target}) -> {extract_config.output}", flush=True)
            extract(extract_config, progress=progress)
            if method not in experiment.controls:
                _judge(experiment.competence, name, words_problem(extract_config.output))
        for cell in task_plan.cells:
            done += 1
            print(f"[{done}/{len(cells)}] {json.dumps(cell.key)}", flush=True)
            train(cell.train, progress=progress)
            if not _evaluated(cell.evaluate):
                evaluate(cell.evaluate, progress=False)
            write_json_atomic(Path(cell.train.output).parent / CELL_INFO, cell.key)
            write_results(root)
            if cell.mode == "standard":
                _judge(experiment.competence, name, student_problem(experiment.competence, cell.evaluate.output,
                                                                    teacher_check))
    write_config(config, root, _grid_file(root, RUN_CONFIG, config.experiment).name)
    table = write_results(root)
    print(table)
    return root
