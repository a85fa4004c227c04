"""Results: every finished evaluation under a folder as one row of grid factors, their summary over seeds, the
paired comparisons with intervals and power, and the tables (Markdown, CSV) that `tokendistill run`,
`tokendistill results` and the report all print. The one owner of a results table, so that they agree.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
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
    RESULTS_CSV,
    RESULTS_MD,
    TEACHER_CHECK,
    TEACHER_CHECK_BEFORE_FOLDER,
    TEACHER_CHECK_FOLDER,
    TEACHER_CHECK_VALID_FOLDER,
    VERDICT_CSV,
    is_grid_file,
)
from tokendistill.config import option
from tokendistill.errors import UserError
from tokendistill.folders import read_json_or_empty, write_file
from tokendistill.statistics import (  # noqa: F401  (PairedDifference, Z_95, Z_POWER_80: their old home)
    Z_95,
    Z_POWER_80,
    PairedDifference,
    SeedLevel,
    claim,
    holm,
    paired_difference,
    random_effects,
    seed_interval,
    seed_variances,
)
from tokendistill.student import TaskMarker, record_or_none

# Every factor a cell can differ in besides its seed: cells that share all of them are averaged over seeds.
FACTORS = ("task", "student", "size", "mode", "method", "k", "target", "marker")
# The attribution methods whose words are the control (no teacher knowledge), the closer match first: other words
# of the same segments in the teacher's counts, then uniformly random input words.
CONTROL_METHODS = ("random_matched", "random")

# ----- collecting -------------------------------------------------------------------------------------------
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


def marker_factor(task_marker: Any) -> str | None:
    """A cell's `marker`: its multitask rows' layout (--task-marker) where it is not the paper's (None: the paper's,
    `predict:` / `explain:` before the input, two rows), so that folders written before the factor keep their key."""
    return None if task_marker is None or TaskMarker.of(task_marker).is_papers else str(task_marker)


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


def summarize(rows: list[dict[str, Any]], teachers: dict[str, dict[str, Any]] | None = None,
              effect: float | None = None, keep_rows: bool = False) -> list[dict[str, Any]]:
    """Mean ± sd over seeds per cell (every factor but the seed), and the paired differences to `standard`, to the
    control words and to the paper's layout of the same task, student and size: over test rows (conditional on the
    trained students) and over seeds (random effects: the level a claim about the method rests on).

    A difference is taken over the seeds both cells have, so that a grid cut short, where modes have run
    different seeds, compares like with like. The sd is None for a single seed (no spread was measured).
    ``effect``: the effect of interest (a share), which the seeds needed and the claims are reckoned against.
    ``keep_rows``: keep each cell's per-seed rows (private fields) for further comparisons.
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
    for entry in summary:
        for name, base in _references(entry, summary).items():
            for field_name, value in compare(entry, base, effect).items():
                entry[f"vs_{name}{field_name}"] = value
            if name == "standard":
                entry["only_here"], entry["only_standard"] = entry.pop("vs_standard_only_here"), entry.pop(
                    "vs_standard_only_there")
            else:
                del entry[f"vs_{name}_only_here"], entry[f"vs_{name}_only_there"]
    if not keep_rows:
        for entry in summary:
            del entry["_accuracy"], entry["_right"], entry["_ids"]
            for name in ("standard", "control", "format"):
                del entry[f"vs_{name}_level"]
    return summary


def _same_setting(entry: dict[str, Any], other: dict[str, Any]) -> bool:
    """Two cells that may be compared: the same task, student and size (and k and target where both have them)."""
    return (all(other[f] == entry[f] for f in ("task", "student", "size"))
            and all(other[f] == entry[f] or other[f] is None or entry[f] is None for f in ("k", "target")))


def _references(entry: dict[str, Any], summary: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The cells ``entry`` is compared with, by comparison name (None: no such cell, or not applicable)."""

    def reference(wanted: dict[str, Any]) -> dict[str, Any] | None:
        # Same task, student and size; the wanted factors; and, of several candidates, the one of the same k and
        # target.
        same = [other for other in summary if other is not entry
                and all(other[f] == entry[f] for f in ("task", "student", "size"))
                and all(other[f] == v for f, v in wanted.items())]
        exact = [other for other in same if other["k"] == entry["k"] and other["target"] == entry["target"]]
        if len(exact) == 1:
            return exact[0]
        return same[0] if not exact and len(same) == 1 else None

    control = None
    if entry["mode"] != "standard" and entry["method"] not in CONTROL_METHODS:
        candidates = (reference({"mode": entry["mode"], "method": method, "marker": entry["marker"]})
                      for method in CONTROL_METHODS)
        # The control of the same mode where the grid has one (multitask_kd's own), else multitask's.
        control = next((c for c in candidates if c is not None), None) or next(
            (c for c in (reference({"method": method, "marker": entry["marker"]}) for method in CONTROL_METHODS)
             if c is not None), None)
    return {
        "standard": None if entry["mode"] == "standard" else reference({"mode": "standard"}),
        "control": control,
        # The same cell in the paper's layout: what a different --task-marker changes.
        "format": None if entry["marker"] is None else reference(
            {"mode": entry["mode"], "method": entry["method"], "marker": None}),
    }


def compare(entry: dict[str, Any], base: dict[str, Any] | None, effect: float | None) -> dict[str, Any]:
    """``entry`` minus ``base`` over the seeds both have: the mean of the seeds' accuracy differences, the rows'
    interval and power (conditional on these students), each seed's difference, the seeds' t-interval, the random
    effects over seeds (interval, between-seed sd, heterogeneity, p, seeds needed) and the claim it allows."""
    shared = sorted(set(entry["_accuracy"]) & set(base["_accuracy"])) if base else []
    with_rows = bool(shared) and all(s in entry["_right"] and s in base["_right"] for s in shared)
    here = {s: entry["_right"][s] for s in shared} if with_rows else {}
    there = {s: base["_right"][s] for s in shared} if with_rows and base else {}
    ids = entry["_ids"] & base["_ids"] if base else frozenset()
    difference = paired_difference(here, there, ids) if with_rows else None
    per_seed = [entry["_accuracy"][s] - base["_accuracy"][s] for s in shared] if base else []
    over_seeds = seed_interval(per_seed)
    # The rows' own variance of each seed's difference: random effects need it, and a table of accuracies lacks it.
    level = random_effects(list(seed_variances(here, there, ids).values()), effect) if with_rows else None
    fields: dict[str, Any] = {
        # The mean difference of the seeds' accuracies (the pooled rows' mean when the test rows agree).
        "": statistics.fmean(per_seed) if per_seed else None,
        "_seeds": len(shared) if shared else None,
        "_per_seed": per_seed,
        "_seed_low": over_seeds[0] if over_seeds else None, "_seed_high": over_seeds[1] if over_seeds else None,
    }
    for name in ("low", "high", "detectable", "only_here", "only_there"):
        fields[f"_{name}"] = None if difference is None else getattr(difference, name)
    for name in ("low", "high", "tau", "i2", "q", "p", "seeds_needed"):
        fields[f"_re_{name}"] = None if level is None else getattr(level, name)
    fields["_claim"] = claim(level, effect)
    fields["_level"] = level
    return fields


def declarations(root: Path) -> tuple[float | None, list[str]]:
    """What the grids planned in ``root`` declared before their test rows were scored: the effect of interest (a
    share; the largest declared) and the primary comparisons ("A vs B", cells named as ``cell_label`` names them)."""
    effect, primary = None, []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not (path.is_file() and is_grid_file(path.name, GRID_PLAN)):
            continue
        try:
            plan = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
        if not isinstance(plan, dict):
            continue
        declared = plan.get("effect_of_interest")
        if isinstance(declared, (int, float)) and not isinstance(declared, bool) and declared > 0:
            effect = max(effect or 0.0, declared / 100)
        primary += [str(item) for item in plan.get("primary") or [] if str(item) not in primary]
    return effect, primary


def cell_label(entry: dict[str, Any]) -> str:
    """A cell as a comparison names it: its mode (and layout), then the method of its words, if any."""
    return _mode_text(entry) + (f" {entry['method']}" if entry.get("method") else "")


def verdict(summary: list[dict[str, Any]], rows: list[dict[str, Any]], effect: float | None,
            primary: Sequence[str]) -> list[dict[str, Any]]:
    """Every comparison at the seed level: the declared primary ones first, then each cell's comparisons with
    standard, the control and the paper's layout (secondary: Holm-adjusted p-values over all of them), each with
    the claim it allows against ``effect``."""
    work = summarize(rows, effect=effect, keep_rows=True) if rows else []
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in work:
        by_label[cell_label(entry)].append(entry)
    found = []
    for text in primary:
        left, _, right = text.partition(" vs ")
        for entry in by_label.get(left.strip(), []):
            for base in by_label.get(right.strip(), []):
                if _same_setting(entry, base):
                    found.append({**_verdict_row(entry, base, compare(entry, base, effect)), "primary": True})
    for entry in work:
        for base in _references(entry, work).values():
            if base is None:
                continue
            pair = f"{cell_label(entry)} vs {cell_label(base)}"
            if any(row["comparison"] == pair and row["task"] == entry["task"] for row in found):
                continue  # declared primary
            found.append({**_verdict_row(entry, base, compare(entry, base, effect)), "primary": False})
    found = [row for row in found if row["seeds"]]
    secondary = [row for row in found if not row["primary"] and row["p"] is not None]
    for row, adjusted in zip(secondary, holm([row["p"] for row in secondary])):
        row["p_holm"] = adjusted
        row["claim"] = claim(row.pop("_level"), effect, adjusted)
    for row in found:
        row.pop("_level", None)
    return found


def _verdict_row(entry: dict[str, Any], base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {"task": entry["task"], "student": entry["student"], "size": entry["size"],
            "comparison": f"{cell_label(entry)} vs {cell_label(base)}", "seeds": fields["_seeds"],
            "difference": fields[""], "per_seed": fields["_per_seed"],
            **{name: fields[f"_re_{name}"] for name in ("low", "high", "tau", "i2", "q", "p", "seeds_needed")},
            "rows_low": fields["_low"], "rows_high": fields["_high"], "p_holm": None, "claim": fields["_claim"],
            "_level": fields["_level"]}


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
               "vs_format_detectable", "vs_format_seeds", "vs_format_seed_low", "vs_format_seed_high",
               # The seed level (random effects over seeds) and the claim it allows, per comparison.
               *(f"vs_{name}_{field}" for name in ("standard", "control", "format")
                 for field in ("re_low", "re_high", "re_tau", "re_i2", "re_p", "re_seeds_needed", "claim")))
VERDICT_COLUMNS = ("task", "student", "size", "comparison", "primary", "seeds", "difference", "low", "high", "tau",
                   "i2", "q", "p", "p_holm", "seeds_needed", "claim", "rows_low", "rows_high")


def verdict_markdown(found: Sequence[dict[str, Any]], effect: float | None) -> str:
    """The comparisons at the level of training seeds, the declared ones first, with what each may claim."""
    if not found:
        return ""
    against = f"±{100 * effect:g} points, the effect of interest the grid declared" if effect else "no declared effect"
    lines = [
        "Every comparison at the level of training seeds: each seed's difference is one observation (random effects "
        "over seeds, DerSimonian-Laird; 95% interval by Hartung-Knapp on seeds - 1 degrees of freedom). A claim "
        f"about the method rests on it; the rows' interval holds the trained students fixed. Claims against {against}: "
        "established (the seed-level interval excludes 0; for a secondary comparison, Holm-adjusted p < 0.05 too), "
        "excluded (the interval lies inside the effect), else inconclusive.",
        "",
        "| task | comparison | primary | seeds | difference | by seed | seed-level 95% interval | between-seed sd | I² "
        "| p (Holm-adjusted, secondary) | seeds to detect the effect | claim | rows' 95% interval (these students) |",
        "|---" * 13 + "|",
    ]
    for row in found:
        p_value = row["p"] if row["primary"] else row["p_holm"]
        lines.append("| " + " | ".join([
            str(row["task"]), row["comparison"], "yes" if row["primary"] else "", str(row["seeds"]),
            _pct(row["difference"], True), ", ".join(_pct(value, True) for value in row["per_seed"]),
            "" if row["low"] is None else f"[{_pct(row['low'], True)}, {_pct(row['high'], True)}]",
            _pct(row["tau"]), "" if row["i2"] is None else f"{100 * row['i2']:.0f}%",
            "" if p_value is None else f"{p_value:.2g}", "" if row["seeds_needed"] is None else str(row["seeds_needed"]),
            row["claim"] or "",
            "" if row["rows_low"] is None else f"[{_pct(row['rows_low'], True)}, {_pct(row['rows_high'], True)}]",
        ]) + " |")
    return "\n".join(lines) + "\n"


def write_results(root: Path) -> str:
    """results.md and results.csv of every finished cell under ``root``; returns the Markdown."""
    rows, teachers = collect(root)
    effect, primary = declarations(root)
    summary = summarize(rows, teachers, effect)
    table = results_markdown(summary, teachers)
    found = verdict(summary, rows, effect, primary)
    if found:
        table += "\n" + verdict_markdown(found, effect)
    if rows:
        table += "\nAccuracy (%) of each finished cell, by seed:\n\n" + seed_table(rows)
    write_file(root / RESULTS_MD, table)
    for name, columns, records in ((RESULTS_CSV, CSV_COLUMNS, summary), (VERDICT_CSV, VERDICT_COLUMNS, found)):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")  # per-seed lists: Markdown
        writer.writeheader()
        writer.writerows(records)
        write_file(root / name, buffer.getvalue())
    return table


@dataclass(kw_only=True)
class ResultsConfig:
    folder: str = option(dataclasses.MISSING, "a grid folder written by `tokendistill run`", positional=True)


def results_command(config: ResultsConfig) -> str:
    root = Path(config.folder)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the output folder of `tokendistill run`")
    return write_results(root)
