"""`tokendistill run EXPERIMENT.yaml`: a grid of tasks x modes x k x targets x training sizes x seeds.

The runner only composes the stages. Per task it optionally fine-tunes the teacher (shared by every cell),
checks the teacher on the test split, extracts the teacher's rationales once per answer target at the
largest k (smaller k are re-selected from the stored scores), then trains and evaluates one student per
cell. Every stage resumes and skips finished work, so the same command continues an interrupted grid and
re-running a finished one recomputes nothing. The results table is rewritten after every cell.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tokendistill.config import (
    EvaluateConfig,
    ExtractConfig,
    TrainConfig,
    build,
    load_yaml,
    option,
    top_k_problem,
    write_config,
)
from tokendistill.errors import UserError
from tokendistill.folders import locked
from tokendistill.rationales import write_json_atomic
from tokendistill.training.modes import MODES

log = logging.getLogger(__name__)

RESULTS_MD, RESULTS_CSV = "results.md", "results.csv"


@dataclass(kw_only=True)
class RunConfig:
    experiment: str = option(dataclasses.MISSING, "experiment YAML file", positional=True)
    output: str | None = option(None, "grid folder (default: the YAML's output)")
    device: str | None = option(None, "auto, cpu or cuda for every stage (default: the YAML's device); not part "
                                      "of a cell's identity, so a grid begun on one device resumes on another")
    dry_run: bool = option(False, "list the cells and exit")
    only: str | None = option(None, "run only the cells matching every clause, e.g. 'mode=standard,dss seed=0' "
                                    "(factors: task, student, size, mode, k, target, seed); the rest stay as they are")


@dataclass(kw_only=True)
class ResultsConfig:
    folder: str = option(dataclasses.MISSING, "a grid folder written by `tokendistill run`", positional=True)


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
    known = {"output", "tasks", "teacher", "student", "modes", "top_k", "targets", "seeds", "device"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    for key in ("tasks", "teacher", "student", "modes"):
        if key not in values:
            raise UserError(f"{path}: missing key {key!r}")
    for key, kind in (("tasks", list), ("teacher", dict), ("student", dict), ("modes", list), ("top_k", list),
                      ("targets", list), ("seeds", list)):
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
    k: float | None
    target: str | None
    seed: int
    train: TrainConfig
    evaluate: EvaluateConfig
    student: str

    @property
    def key(self) -> dict[str, Any]:
        return {"task": self.task, "student": self.student, "size": self.size, "mode": self.mode, "k": self.k,
                "target": self.target, "seed": self.seed}


@dataclass
class TaskPlan:
    spec: TaskSpec
    finetune: TrainConfig | None
    teacher_eval: dict[str, Any]
    extractions: dict[str, ExtractConfig]
    cells: list[Cell]


def _common(spec: TaskSpec, device: str) -> dict[str, Any]:
    return {"task": spec.name, "data": spec.data, "input_column": spec.input_column,
            "label_column": spec.label_column, "device": device}


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
        extractions = {}
        if rationale_modes:
            for target in experiment.targets:
                extractions[target] = build(ExtractConfig, {
                    **common, **extract_options, "teacher": teacher_model, "target": target,
                    "split": spec.train_split, "limit": max(spec.train_sizes), "top_k": max(experiment.top_k),
                    "output": str(task_root / f"rationales-{target}"),
                })
        teacher_eval = {**common, "teacher": teacher_model, "split": spec.test_split, "limit": spec.test_limit,
                        "output": str(task_root / "teacher-eval"),
                        **{k: v for k, v in extract_options.items()
                           if k in ("batch_size", "max_input_length", "max_new_tokens", "prompt_suffix", "chat_template")}}
        train_options = dict(experiment.student.get("train", {}))
        evaluate_options = dict(experiment.student.get("evaluate", {}))
        cells = []
        students = experiment.student["model"]
        # Seeds outermost: a grid cut short still holds a complete comparison for its first seeds.
        for seed, size, student_model, mode in itertools.product(
            experiment.seeds, spec.train_sizes, students, experiment.modes
        ):
            uses_rationales = MODES.get(mode).needs_rationales
            for k in experiment.top_k if uses_rationales else [None]:
                for target in experiment.targets if uses_rationales else [None]:
                    name = mode + (f"-k{k:g}-{target}" if uses_rationales else "")
                    student_folder = f"{_slug(student_model)}/" if len(students) > 1 else ""
                    folder = task_root / f"n{size}" / f"{student_folder}{name}" / f"seed{seed}"
                    train = build(TrainConfig, {
                        **common, **train_options, "student": student_model,
                        "init": experiment.student.get("init", "pretrained"), "mode": mode, "seed": seed,
                        "split": spec.train_split, "limit": size, "output": str(folder / "student"),
                        "rationales": extractions[target].output if uses_rationales else None,
                        "top_k": k if uses_rationales and k != max(experiment.top_k) else None,
                        "teacher": teacher_model if MODES.get(mode).needs_teacher else None,
                    })
                    evaluate = build(EvaluateConfig, {
                        **common, **evaluate_options, "model": train.output, "split": spec.test_split,
                        "limit": spec.test_limit, "output": str(folder / "eval"),
                    })
                    cells.append(Cell(spec.name, size, mode, k, target, seed, train, evaluate,
                                      Path(student_model).name))
        plans.append(TaskPlan(spec, finetune, teacher_eval, extractions, cells))
    return plans


_FACTORS = ("task", "student", "size", "mode", "k", "target", "seed")


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
            targets = {cell.target for cell in kept}
            extractions = {t: c for t, c in task_plan.extractions.items() if t in targets}
            needs_teacher = bool(extractions) or any(cell.train.teacher for cell in kept)
            teacher = {} if needs_teacher else {"finetune": None, "teacher_eval": {}}
            selected.append(dataclasses.replace(task_plan, cells=kept, extractions=extractions, **teacher))
    return selected


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name)


def _evaluated(config: EvaluateConfig) -> bool:
    """Whether this student's evaluation is already on disk (same student, same settings)."""
    metrics_path = Path(config.output) / "metrics.json"
    info_path = Path(config.model) / "tokendistill.json"
    if not (metrics_path.exists() and info_path.exists()):
        return False
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    identity = json.loads(info_path.read_text(encoding="utf-8")).get("identity")
    return (metrics.get("model_identity") == identity and metrics.get("limit") == config.limit
            and metrics.get("answer", "generation") == config.answer)


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


def _run_cells(config: RunConfig, experiment: Experiment, plans: list[TaskPlan], progress: bool) -> Path:
    from tokendistill.attribution import extract
    from tokendistill.evaluation import evaluate
    from tokendistill.teacher_eval import TeacherEvalConfig, teacher_eval
    from tokendistill.training import train

    root = Path(experiment.output)
    cells = [cell for task_plan in plans for cell in task_plan.cells]
    (root / "experiment.yaml").write_text(
        yaml.safe_dump(dataclasses.asdict(experiment), sort_keys=False), encoding="utf-8"
    )
    done = 0
    for task_plan in plans:
        name = task_plan.spec.name
        if task_plan.finetune is not None:
            before = {**task_plan.teacher_eval, "teacher": task_plan.finetune.student,
                      "output": str(Path(task_plan.teacher_eval["output"]).with_name("teacher-eval-before"))}
            if not (Path(before["output"]) / "teacher_eval.json").exists():
                print(f"[{name}] checking the teacher before fine-tuning", flush=True)
                teacher_eval(build(TeacherEvalConfig, before), progress=progress)
            print(f"[{name}] fine-tuning the teacher -> {task_plan.finetune.output}", flush=True)
            train(task_plan.finetune, progress=progress)
        # An empty teacher_eval: --only kept no cell that reads the teacher.
        if task_plan.teacher_eval and not (Path(task_plan.teacher_eval["output"]) / "teacher_eval.json").exists():
            print(f"[{name}] checking the teacher on {task_plan.spec.test_split}", flush=True)
            teacher_eval(build(TeacherEvalConfig, dict(task_plan.teacher_eval)), progress=progress)
        for target, extract_config in task_plan.extractions.items():
            print(f"[{name}] extracting rationales (target {target}) -> {extract_config.output}", flush=True)
            extract(extract_config, progress=progress)
        for cell in task_plan.cells:
            done += 1
            print(f"[{done}/{len(cells)}] {json.dumps(cell.key)}", flush=True)
            train(cell.train, progress=progress)
            if not _evaluated(cell.evaluate):
                evaluate(cell.evaluate, progress=False)
            write_json_atomic(Path(cell.train.output).parent / "cell.json", cell.key)
            write_results(root)
    write_config(config, root, "run.yaml")
    table = write_results(root)
    print(table)
    return root


# ----- results ----------------------------------------------------------------------------------------------
def collect(root: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every finished cell's accuracy, and each task's teacher check."""
    rows = []
    for cell_path in sorted(root.rglob("cell.json")):
        metrics_path = cell_path.parent / "eval" / "metrics.json"
        if metrics_path.exists():
            key = json.loads(cell_path.read_text(encoding="utf-8"))
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            predictions = cell_path.parent / "eval" / "predictions.jsonl"
            right = None
            if predictions.exists():
                with predictions.open(encoding="utf-8") as handle:
                    right = frozenset(record["id"] for record in map(json.loads, handle) if record.get("correct"))
            rows.append({**key, "accuracy": metrics["accuracy"], "examples": metrics["examples"], "right": right})
    teachers = {}
    for path in sorted(root.rglob("teacher-eval/teacher_eval.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        before = path.parent.with_name("teacher-eval-before") / "teacher_eval.json"
        if before.exists():
            result["before_finetuning"] = json.loads(before.read_text(encoding="utf-8"))
        teachers[result["task"]] = result
    return rows, teachers


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± sd over seeds per (task, student, size, mode, k, target), and the paired difference to `standard`.

    The difference is the mean over the seeds both have of (this cell - standard), so that a grid cut short,
    where modes have run different seeds, compares like with like; with the same seeds it is the difference
    of the means. The sd is None for a single seed (no spread was measured).
    """
    groups: dict[tuple[Any, ...], dict[int, float]] = defaultdict(dict)
    right: dict[tuple[Any, ...], dict[int, frozenset[str]]] = defaultdict(dict)
    for row in rows:
        key = (row["task"], row.get("student", ""), row["size"], row["mode"], row["k"], row["target"])
        groups[key][row["seed"]] = row["accuracy"]
        if row.get("right") is not None:
            right[key][row["seed"]] = row["right"]
    summary = []
    for (task, student, size, mode, k, target), by_seed in sorted(groups.items(),
                                                                   key=lambda item: tuple(map(str, item[0]))):
        values = list(by_seed.values())
        summary.append({
            "task": task, "student": student, "size": size, "mode": mode, "k": k, "target": target,
            "seeds": len(values),
            "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "by_seed": by_seed, "right": right.get((task, student, size, mode, k, target), {}),
        })
    baselines = {(s["task"], s["student"], s["size"]): s for s in summary if s["mode"] == "standard"}
    for entry in summary:
        by_seed = entry["by_seed"]
        standard = baselines.get((entry["task"], entry["student"], entry["size"]))
        base = standard["by_seed"] if standard else {}
        shared = sorted(set(by_seed) & set(base))
        entry["vs_standard"] = (None if entry["mode"] == "standard" or not shared
                                else statistics.fmean(by_seed[s] - base[s] for s in shared))
        entry["paired_seeds"] = len(shared) if entry["vs_standard"] is not None else None
        # The rows behind the difference: test rows right here but not under standard on the same seed, and the
        # reverse, summed over the paired seeds (the two counts a McNemar test compares, one seed at a time).
        entry["only_here"] = entry["only_standard"] = None
        if entry["vs_standard"] is not None and all(s in entry["right"] and s in standard["right"] for s in shared):
            entry["only_here"] = sum(len(entry["right"][s] - standard["right"][s]) for s in shared)
            entry["only_standard"] = sum(len(standard["right"][s] - entry["right"][s]) for s in shared)
    for entry in summary:
        del entry["by_seed"], entry["right"]
    return summary


def results_markdown(summary: list[dict[str, Any]], teachers: dict[str, dict[str, Any]]) -> str:
    lines = ["| task | teacher accuracy | student | train size | mode | k | target | seeds | accuracy (mean ± sd) "
             "| vs standard (paired seeds) | test rows right only here / only under standard |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in summary:
        teacher = teachers.get(entry["task"])
        teacher_text = _teacher_text(teacher)
        k = "" if entry["k"] is None else f"{entry['k']:g}"
        difference = ""
        if entry["vs_standard"] is not None:
            difference = f"{100 * entry['vs_standard']:+.1f}"
            if entry["paired_seeds"] != entry["seeds"]:
                difference += f" (on {entry['paired_seeds']} of its seeds)"
        wins = "" if entry.get("only_here") is None else f"{entry['only_here']} / {entry['only_standard']}"
        accuracy = f"{100 * entry['mean']:.1f}" + ("" if entry["sd"] is None else f" ± {100 * entry['sd']:.1f}")
        lines.append(f"| {entry['task']} | {teacher_text} | {entry['student']} | {entry['size']} | {entry['mode']} | {k} | "
                     f"{entry['target'] or ''} | {entry['seeds']} | {accuracy} | {difference} | {wins} |")
    return "\n".join(lines) + "\n"


def seed_table(rows: list[dict[str, Any]]) -> str:
    """Every finished cell's accuracy, one column per seed: where the means above come from."""
    seeds = sorted({row["seed"] for row in rows})
    cells: dict[tuple[str, ...], dict[int, float]] = defaultdict(dict)
    for row in rows:
        k = "" if row["k"] is None else f"{row['k']:g}"
        key = (row["task"], row.get("student", ""), str(row["size"]), row["mode"], k, row["target"] or "")
        cells[key][row["seed"]] = row["accuracy"]
    lines = ["| task | student | train size | mode | k | target | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---" * (6 + len(seeds)) + "|"]
    for key, by_seed in sorted(cells.items()):
        values = [f"{100 * by_seed[s]:.1f}" if s in by_seed else "" for s in seeds]
        lines.append("| " + " | ".join([*key, *values]) + " |")
    return "\n".join(lines) + "\n"


def _teacher_text(teacher: dict[str, Any] | None) -> str:
    if not teacher:
        return "n/a"
    text = f"{100 * teacher['accuracy'][teacher['best']]:.1f}% ({teacher['best'].replace('_', ' ')})"
    before = teacher.get("before_finetuning")
    if before:
        text += f", {100 * before['accuracy'][before['best']]:.1f}% before fine-tuning"
    return text


def write_results(root: Path) -> str:
    rows, teachers = collect(root)
    summary = summarize(rows)
    table = results_markdown(summary, teachers)
    if rows:
        table += "\nAccuracy (%) of each finished cell, by seed:\n\n" + seed_table(rows)
    (root / RESULTS_MD).write_text(table, encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["task", "student", "size", "mode", "k", "target", "seeds", "mean",
                                                "sd", "vs_standard", "paired_seeds", "only_here",
                                                "only_standard"])
    writer.writeheader()
    writer.writerows(summary)
    (root / RESULTS_CSV).write_text(buffer.getvalue(), encoding="utf-8")
    return table


def results_command(config: ResultsConfig) -> str:
    root = Path(config.folder)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the output folder of `tokendistill run`")
    return write_results(root)
