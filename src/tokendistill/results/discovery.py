"""Where a results table comes from: every finished evaluation under a folder as one row of grid factors (from
the cell's own record, or read back from a lone student's files), each task's teacher checks, and what the grids
planned there declared before their test rows were scored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tokendistill.artefacts import (
    CELL_INFO,
    COMPETENCE_EVAL_FOLDER,
    GRID_PLAN,
    MANIFEST,
    METRICS,
    PREDICTIONS,
    TEACHER_CHECK,
    TEACHER_CHECK_BEFORE_FOLDER,
    TEACHER_CHECK_FOLDER,
    TEACHER_CHECK_VALID_FOLDER,
    is_grid_file,
)
from tokendistill.cells import FACTORS, marker_factor
from tokendistill.folders import read_json_or_empty, read_records
from tokendistill.student import record_or_none

# The attribution methods whose words are the control (no teacher knowledge), the closer match first: other words
# of the same segments in the teacher's counts, then uniformly random input words.
CONTROL_METHODS = ("random_matched", "random")


def _key_from_files(metrics: dict[str, Any]) -> dict[str, Any]:
    """A cell's factors from what the student and its rationales recorded, for folders that `run` did not write
    (a lone `train` + `evaluate`, the demo)."""
    model = Path(str(metrics.get("model", "")))
    record = record_or_none(model) if model.is_dir() else None
    config = record.config if record else {}
    mode = str(metrics.get("mode") or (record.mode if record else None) or "model")
    manifest = read_json_or_empty(Path(config["rationales"]) / MANIFEST).get("identity", {}) if config.get(
        "rationales") else {}
    k = config.get("top_k") or manifest.get("top_k")
    return {
        "task": metrics.get("task"), "student": Path(str(config.get("student", model))).name,
        "size": config.get("limit") or (record.train_examples if record else None), "mode": mode, "method": manifest.get("method"),
        "k": float(k) if isinstance(k, (int, float)) and config.get("rationales") else None,
        "target": manifest.get("target"), "marker": marker_factor(config.get("task_marker")),
        "seed": config.get("seed", 0),
    }


def collect(root: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every finished evaluation under ``root`` (its factors, accuracy, the ids of its test rows and of those
    it got right), and each task's teacher check."""
    rows = [row for path in sorted(root.rglob(METRICS)) if (row := _evaluation_row(path)) is not None]
    return rows, _teacher_checks(root)


def _evaluation_row(metrics_path: Path) -> dict[str, Any] | None:
    """One finished evaluation as a results row, or None (a competence check, or not finished)."""
    folder = metrics_path.parent
    if folder.name == COMPETENCE_EVAL_FOLDER:
        return None  # a competence check on validation rows, not a result
    metrics = read_json_or_empty(metrics_path)
    if "accuracy" not in metrics or not (folder / PREDICTIONS).exists():
        return None
    cell = read_json_or_empty(folder.parent / CELL_INFO)
    key = {factor: cell.get(factor) for factor in (*FACTORS, "seed")} if cell else _key_from_files(metrics)
    if cell and cell.get("mode") and "method" not in cell and cell.get("k") is not None:
        key["method"] = "saliency"  # a grid cell written before the method was a factor
    records = read_records(folder / PREDICTIONS)
    ids = frozenset(record["id"] for record in records)
    right = frozenset(record["id"] for record in records if record.get("correct"))
    return {**key, "model": metrics.get("model"), "accuracy": metrics["accuracy"],
            "examples": metrics.get("examples", len(ids)), "ids": ids, "right": right}


def _teacher_checks(root: Path) -> dict[str, dict[str, Any]]:
    """Each task's teacher check on its test rows, with the check before fine-tuning beside it. A grid's check
    sits in teacher-eval/; a user's own `teacher-eval --output` anywhere. Per task, a grid's check wins over
    others (a grid folder may hold a user's side checks too), then the first by path."""
    teachers: dict[str, dict[str, Any]] = {}
    paths = sorted((path for path in root.rglob(TEACHER_CHECK)
                    if path.parent.name not in (TEACHER_CHECK_BEFORE_FOLDER, TEACHER_CHECK_VALID_FOLDER)),
                   key=lambda path: (path.parent.name != TEACHER_CHECK_FOLDER, str(path)))
    for path in paths:
        result = read_json_or_empty(path)
        if not result.get("task") or result["task"] in teachers:
            continue
        before = read_json_or_empty(path.parent.with_name(TEACHER_CHECK_BEFORE_FOLDER) / TEACHER_CHECK)
        if before:
            result["before_finetuning"] = before
        teachers[result["task"]] = result
    return teachers



def _plans(root: Path) -> Iterator[dict[str, Any]]:
    """The grid plans `tokendistill run` kept in ``root`` (a damaged one is passed over: the cells still count)."""
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not (path.is_file() and is_grid_file(path.name, GRID_PLAN)):
            continue
        try:
            plan = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
        if isinstance(plan, dict):
            yield plan


def declarations(root: Path) -> tuple[float | None, list[str]]:
    """What the grids planned in ``root`` declared before their test rows were scored: the effect of interest (a
    share; the largest declared) and the primary comparisons ("A vs B", cells named as ``cell_label`` names them)."""
    effect, primary = None, []
    for plan in _plans(root):
        declared = plan.get("effect_of_interest")
        if isinstance(declared, (int, float)) and not isinstance(declared, bool) and declared > 0:
            effect = max(effect or 0.0, declared / 100)
        primary += [str(item) for item in plan.get("primary") or [] if str(item) not in primary]
    return effect, primary


def planned_seeds(root: Path) -> int | None:
    """The most seeds a plan in ``root`` that declared primary comparisons runs: a verdict on fewer is interim."""
    counts = [len(plan["seeds"]) for plan in _plans(root)
              if plan.get("primary") and isinstance(plan.get("seeds"), list)]
    return max(counts, default=None)


