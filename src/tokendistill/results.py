"""Results: every finished evaluation under a folder as one row of grid factors, their summary over seeds, the
paired comparisons with intervals and power, and the tables (Markdown, CSV) that `tokendistill run`,
`tokendistill results` and the report all print. The one owner of a results table, so that they agree.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokendistill.artefacts import (
    CELL_INFO,
    COMPETENCE_EVAL_FOLDER,
    MANIFEST,
    METRICS,
    PREDICTIONS,
    RESULTS_CSV,
    RESULTS_MD,
    STUDENT_INFO,
    TEACHER_CHECK,
    TEACHER_CHECK_BEFORE_FOLDER,
    TEACHER_CHECK_FOLDER,
    TEACHER_CHECK_VALID_FOLDER,
)
from tokendistill.config import option
from tokendistill.errors import UserError
from tokendistill.folders import read_json_or_empty

# Every factor a cell can differ in besides its seed: cells that share all of them are averaged over seeds.
FACTORS = ("task", "student", "size", "mode", "method", "k", "target", "marker")
# A cell's `marker`: its multitask rows' layout (--task-marker) where it is not the paper's (None: the paper's,
# `predict:` / `explain:` before the input, two rows), so that folders written before the factor keep their key.
PAPER_MARKER = "encoder"
# The attribution method whose words are the control: random input words, no teacher knowledge.
CONTROL_METHOD = "random"

Z_95 = 1.959963984540054  # two-sided 95%
# Student's t, two-sided 95%, by degrees of freedom (1-30; beyond, the normal's): the seeds' interval. A table,
# since no dependency of ours has the quantile function and these are the textbook values.
T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
Z_POWER_80 = 0.8416212335729143  # one-sided 80% power


# ----- the statistics ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedDifference:
    """Accuracy here minus accuracy there on the same test rows and seeds, pooled over the seeds.

    ``low``/``high``: the 95% interval of the mean difference (normal approximation over test rows, each row's
    difference averaged over the paired seeds; with one seed it is the Wald interval of McNemar's paired
    proportions). ``detectable``: the smallest difference this design detects at 80% power (two-sided 5%),
    (z_0.975 + z_0.8) times the standard error. The interval covers the sampling of test rows; the spread
    between training seeds shows in the per-seed table, and three seeds are too few for an interval of it.
    """

    mean: float
    low: float
    high: float
    detectable: float
    rows: int
    seeds: int
    only_here: int
    only_there: int


def paired_difference(here: dict[int, frozenset[str]], there: dict[int, frozenset[str]],
                      ids: Iterable[str]) -> PairedDifference | None:
    """``here``/``there``: per seed, the ids of the test rows answered right; ``ids``: every test row."""
    seeds = sorted(set(here) & set(there))
    rows = sorted(set(ids))
    if not seeds or not rows:
        return None
    per_row = [statistics.fmean((row in here[s]) - (row in there[s]) for s in seeds) for row in rows]
    mean = statistics.fmean(per_row)
    error = statistics.stdev(per_row) / math.sqrt(len(rows)) if len(rows) > 1 else 0.0
    return PairedDifference(
        mean=mean, low=mean - Z_95 * error, high=mean + Z_95 * error, detectable=(Z_95 + Z_POWER_80) * error,
        rows=len(rows), seeds=len(seeds),
        only_here=sum(len(here[s] - there[s]) for s in seeds), only_there=sum(len(there[s] - here[s]) for s in seeds),
    )


def seed_interval(differences: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t-interval of the mean of per-seed differences: what the training seeds' spread allows (each seed
    one observation), beside the rows' interval. None under two seeds."""
    if len(differences) < 2:
        return None
    mean = statistics.fmean(differences)
    half = (T_95[len(differences) - 2] if len(differences) - 1 <= len(T_95) else Z_95) * statistics.stdev(
        differences) / math.sqrt(len(differences))
    return mean - half, mean + half


# ----- collecting -------------------------------------------------------------------------------------------
def _key_from_files(metrics: dict[str, Any]) -> dict[str, Any]:
    """A cell's factors from what the student and its rationales recorded, for folders that `run` did not write
    (a lone `train` + `evaluate`, the demo)."""
    model = Path(str(metrics.get("model", "")))
    student = read_json_or_empty(model / STUDENT_INFO) if model.is_dir() else {}
    config = student.get("config", {})
    mode = str(metrics.get("mode") or student.get("mode") or "model")
    manifest = read_json_or_empty(Path(config["rationales"]) / MANIFEST).get("identity", {}) if config.get(
        "rationales") else {}
    k = config.get("top_k") or manifest.get("top_k")
    return {
        "task": metrics.get("task"), "student": Path(str(config.get("student", model))).name,
        "size": config.get("limit") or student.get("train_examples"), "mode": mode, "method": manifest.get("method"),
        "k": float(k) if isinstance(k, (int, float)) and config.get("rationales") else None,
        "target": manifest.get("target"), "marker": marker_factor(config.get("task_marker")),
        "seed": config.get("seed", 0),
    }


def marker_factor(task_marker: Any) -> str | None:
    return None if task_marker in (None, PAPER_MARKER) else str(task_marker)


def collect(root: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every finished evaluation under ``root`` (its factors, accuracy, the ids of its test rows and of those
    it got right), and each task's teacher check."""
    rows = []
    for metrics_path in sorted(root.rglob(METRICS)):
        predictions_path = metrics_path.parent / PREDICTIONS
        if metrics_path.parent.name == COMPETENCE_EVAL_FOLDER:
            continue  # a competence check on validation rows, not a result
        metrics = read_json_or_empty(metrics_path)
        if "accuracy" not in metrics or not predictions_path.exists():
            continue
        cell = read_json_or_empty(metrics_path.parent.parent / CELL_INFO)
        key = {factor: cell.get(factor) for factor in (*FACTORS, "seed")} if cell else _key_from_files(metrics)
        if cell and cell.get("mode") and "method" not in cell and cell.get("k") is not None:
            key["method"] = "saliency"  # a grid cell written before the method was a factor
        ids, right = set(), set()
        with predictions_path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                ids.add(record["id"])
                if record.get("correct"):
                    right.add(record["id"])
        rows.append({**key, "model": metrics.get("model"), "accuracy": metrics["accuracy"],
                     "examples": metrics.get("examples", len(ids)),
                     "ids": frozenset(ids), "right": frozenset(right)})
    teachers: dict[str, dict[str, Any]] = {}
    # A grid's check sits in teacher-eval/; a user's own `teacher-eval --output` anywhere. Per task, a grid's
    # check wins over others (a grid folder may hold a user's side checks too), then the first by path.
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
    return rows, teachers


# ----- the summary ------------------------------------------------------------------------------------------
def _group(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(factor) for factor in FACTORS)


def teacher_accuracy(teacher: dict[str, Any] | None) -> float | None:
    return None if not teacher else teacher["accuracy"][teacher["best"]]


def summarize(rows: list[dict[str, Any]], teachers: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Mean ± sd over seeds per cell (every factor but the seed), and the paired differences to `standard` and
    to the random-word control of the same task, student and size.

    A difference is taken over the seeds both cells have, so that a grid cut short, where modes have run
    different seeds, compares like with like. The sd is None for a single seed (no spread was measured).
    """
    teachers = teachers or {}
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_group(row)].append(row)
    summary = []
    for key, members in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        by_seed = {row["seed"]: row for row in members}
        values = [row["accuracy"] for row in by_seed.values()]
        summary.append({
            **dict(zip(FACTORS, key)), "seeds": len(values),
            "test_rows": max((row.get("examples") or 0 for row in members), default=0) or None,
            "teacher_accuracy": teacher_accuracy(teachers.get(key[0])),
            "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "_accuracy": {seed: row["accuracy"] for seed, row in by_seed.items()},
            "_right": {seed: row["right"] for seed, row in by_seed.items() if row.get("right") is not None},
            "_ids": frozenset().union(*(row.get("ids") or frozenset() for row in members)),
        })

    def reference(entry: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any] | None:
        # Same task, student and size; the wanted factors; and, of several candidates, the one of the same k and
        # target.
        same = [other for other in summary if other is not entry
                and all(other[f] == entry[f] for f in ("task", "student", "size"))
                and all(other[f] == v for f, v in wanted.items())]
        exact = [other for other in same if other["k"] == entry["k"] and other["target"] == entry["target"]]
        if len(exact) == 1:
            return exact[0]
        return same[0] if not exact and len(same) == 1 else None

    for entry in summary:
        for name, wanted, skip in (
            ("standard", {"mode": "standard"}, entry["mode"] == "standard"),
            ("control", {"method": CONTROL_METHOD, "marker": entry["marker"]},
             entry["mode"] == "standard" or entry["method"] == CONTROL_METHOD),
            # The same cell in the paper's layout: what a different --task-marker changes.
            ("format", {"mode": entry["mode"], "method": entry["method"], "marker": None}, entry["marker"] is None),
        ):
            base = None if skip else reference(entry, wanted)
            shared = sorted(set(entry["_accuracy"]) & set(base["_accuracy"])) if base else []
            difference = None
            if shared and all(s in entry["_right"] and s in base["_right"] for s in shared):
                difference = paired_difference({s: entry["_right"][s] for s in shared},
                                               {s: base["_right"][s] for s in shared}, entry["_ids"] & base["_ids"])
            # The mean difference of the seeds' accuracies (the pooled rows' mean when the test rows agree);
            # the interval and the power need the rows (predictions), which a table of accuracies lacks.
            entry[f"vs_{name}"] = (statistics.fmean(entry["_accuracy"][s] - base["_accuracy"][s] for s in shared)
                                   if shared else None)
            entry[f"vs_{name}_seeds"] = len(shared) if shared else None
            # Each seed's own difference: the interval covers test rows, and the seeds' spread can be larger.
            entry[f"vs_{name}_per_seed"] = [entry["_accuracy"][s] - base["_accuracy"][s] for s in shared] if shared else []
            over_seeds = seed_interval(entry[f"vs_{name}_per_seed"])
            entry[f"vs_{name}_seed_low"], entry[f"vs_{name}_seed_high"] = over_seeds or (None, None)
            for field in ("low", "high", "detectable"):
                entry[f"vs_{name}_{field}"] = None if difference is None else getattr(difference, field)
            if name == "standard":
                entry["only_here"] = None if difference is None else difference.only_here
                entry["only_standard"] = None if difference is None else difference.only_there
    for entry in summary:
        del entry["_accuracy"], entry["_right"], entry["_ids"]
    return summary


# ----- tables -----------------------------------------------------------------------------------------------
def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _difference_text(entry: dict[str, Any], name: str) -> str:
    if entry[f"vs_{name}"] is None:
        return ""
    text = _pct(entry[f"vs_{name}"], True)
    if entry[f"vs_{name}_low"] is not None:
        text += f" [{_pct(entry[f'vs_{name}_low'], True)}, {_pct(entry[f'vs_{name}_high'], True)}]"
    if entry[f"vs_{name}_seeds"] != entry["seeds"]:
        text += f" (on {entry[f'vs_{name}_seeds']} of its seeds)"
    if len(entry.get(f"vs_{name}_per_seed") or []) > 1:
        text += "; by seed " + ", ".join(_pct(value, True) for value in entry[f"vs_{name}_per_seed"])
        text += f", over seeds [{_pct(entry[f'vs_{name}_seed_low'], True)}, {_pct(entry[f'vs_{name}_seed_high'], True)}]"
    return text


def teacher_text(teacher: dict[str, Any] | None) -> str:
    if not teacher:
        return "n/a"
    text = f"{100 * teacher['accuracy'][teacher['best']]:.1f}% ({teacher['best'].replace('_', ' ')})"
    before = teacher.get("before_finetuning")
    if before:
        text += f", {100 * before['accuracy'][before['best']]:.1f}% before fine-tuning"
    return text


TABLE_HEADERS = ("task", "teacher accuracy", "student", "train size", "mode", "method", "k", "target", "seeds",
                 "test rows", "accuracy (mean ± sd)", "vs standard [95% interval]", "detectable at 80% power",
                 "vs random words [95% interval]", "test rows right only here / only under standard")
# Only in a table that holds cells of another --task-marker than the paper's.
FORMAT_HEADER = "vs paper format [95% interval]"


def _mode_text(entry: dict[str, Any]) -> str:
    return str(entry["mode"]) + (f" ({entry['marker']})" if entry.get("marker") else "")


def table(summary: Sequence[dict[str, Any]],
          teachers: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The summary as headers and text cells: the table every front end prints."""
    rows = table_rows(summary, teachers)
    if not any(entry.get("marker") for entry in summary):
        return list(TABLE_HEADERS), rows
    for entry, row in zip(summary, rows):
        row.append(_difference_text(entry, "format"))
    return [*TABLE_HEADERS, FORMAT_HEADER], rows


def table_rows(summary: Sequence[dict[str, Any]], teachers: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The summary as text cells under ``TABLE_HEADERS``."""
    rows = []
    for entry in summary:
        k = "" if entry["k"] is None else f"{entry['k']:g}"
        accuracy = _pct(entry["mean"]) + ("" if entry["sd"] is None else f" ± {_pct(entry['sd'])}")
        wins = "" if entry.get("only_here") is None else f"{entry['only_here']} / {entry['only_standard']}"
        rows.append([str(entry["task"]), teacher_text(teachers.get(entry["task"])), str(entry["student"] or ""),
                     str(entry["size"] or ""), _mode_text(entry), str(entry["method"] or ""), k,
                     str(entry["target"] or ""), str(entry["seeds"]), str(entry["test_rows"] or ""), accuracy,
                     _difference_text(entry, "standard"),
                     "" if entry["vs_standard_detectable"] is None else f"{_pct(entry['vs_standard_detectable'])}",
                     _difference_text(entry, "control"), wins])
    return rows


def results_markdown(summary: Sequence[dict[str, Any]], teachers: dict[str, dict[str, Any]]) -> str:
    headers, rows = table(summary, teachers)
    lines = ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def seed_table(rows: list[dict[str, Any]]) -> str:
    """Every finished cell's accuracy, one column per seed: where the means come from."""
    seeds = sorted({row["seed"] for row in rows}, key=str)
    cells: dict[tuple[str, ...], dict[Any, float]] = defaultdict(dict)
    for row in rows:
        k = "" if row.get("k") is None else f"{row['k']:g}"
        key = (str(row["task"]), str(row.get("student") or ""), str(row.get("size") or ""), _mode_text(row),
               str(row.get("method") or ""), k, str(row.get("target") or ""))
        cells[key][row["seed"]] = row["accuracy"]
    lines = ["| task | student | train size | mode | method | k | target | "
             + " | ".join(f"seed {s}" for s in seeds) + " |", "|---" * (7 + len(seeds)) + "|"]
    for key, by_seed in sorted(cells.items()):
        values = [_pct(by_seed.get(s)) for s in seeds]
        lines.append("| " + " | ".join([*key, *values]) + " |")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("task", "student", "size", "mode", "method", "k", "target", "seeds", "test_rows", "teacher_accuracy",
               "mean", "sd", "vs_standard", "vs_standard_low", "vs_standard_high", "vs_standard_detectable",
               "vs_standard_seeds", "only_here", "only_standard", "vs_control", "vs_control_low", "vs_control_high",
               "vs_control_detectable", "vs_control_seeds", "vs_standard_seed_low", "vs_standard_seed_high",
               "vs_control_seed_low", "vs_control_seed_high", "marker", "vs_format", "vs_format_low", "vs_format_high",
               "vs_format_detectable", "vs_format_seeds", "vs_format_seed_low", "vs_format_seed_high")


def write_results(root: Path) -> str:
    """results.md and results.csv of every finished cell under ``root``; returns the Markdown."""
    rows, teachers = collect(root)
    summary = summarize(rows, teachers)
    table = results_markdown(summary, teachers)
    if rows:
        table += "\nAccuracy (%) of each finished cell, by seed:\n\n" + seed_table(rows)
    (root / RESULTS_MD).write_text(table, encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")  # per-seed lists: Markdown
    writer.writeheader()
    writer.writerows(summary)
    (root / RESULTS_CSV).write_text(buffer.getvalue(), encoding="utf-8")
    return table


@dataclass(kw_only=True)
class ResultsConfig:
    folder: str = option(dataclasses.MISSING, "a grid folder written by `tokendistill run`", positional=True)


def results_command(config: ResultsConfig) -> str:
    root = Path(config.folder)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the output folder of `tokendistill run`")
    return write_results(root)
