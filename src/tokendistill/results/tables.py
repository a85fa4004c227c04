"""A results table as text: the Markdown and CSV that `tokendistill run`, `tokendistill results` and the report
print, one owner so that they agree; and the `results` command."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokendistill.artefacts import (
    RESULTS_CSV,
    RESULTS_MD,
    VERDICT_CSV,
)
from tokendistill.cells import BASELINE_MODE
from tokendistill.errors import UserError
from tokendistill.folders import write_file
from tokendistill.options import option
from tokendistill.results.discovery import collect, declarations, planned_seeds
from tokendistill.results.summary import COMPARISONS, mode_text, summarize, verdict
from tokendistill.statistics import holm


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _difference_text(entry: dict[str, Any], name: str) -> str:
    """A comparison as the one interval a claim rests on: the paired difference and its 95% interval over the
    training seeds (none on one seed); the rows' interval is its detail (``_difference_detail``)."""
    if entry[f"vs_{name}"] is None:
        return ""
    text = _pct(entry[f"vs_{name}"], True)
    seeds = entry[f"vs_{name}_seeds"]
    if entry.get(f"vs_{name}_seed_low") is not None:
        text += f" [{_pct(entry[f'vs_{name}_seed_low'], True)}, {_pct(entry[f'vs_{name}_seed_high'], True)}]"
    notes = [f"on {seeds} of its {entry['seeds']} seeds"] if seeds and seeds != entry["seeds"] else []
    if seeds == 1:
        notes.append("no interval" if notes else "one seed: no interval")
    return text + (f" ({': '.join(notes)})" if notes else "")


def _difference_detail(entry: dict[str, Any], name: str) -> str:
    """What stands behind a comparison beyond its seed-level interval: the interval over the test rows (the trained
    students held fixed), what the rows detect, and each seed's difference."""
    if entry[f"vs_{name}"] is None:
        return ""
    parts = []
    if entry[f"vs_{name}_low"] is not None:
        parts.append(f"over the test rows (these trained students): {_pct(entry[f'vs_{name}'], True)} "
                     f"[{_pct(entry[f'vs_{name}_low'], True)}, {_pct(entry[f'vs_{name}_high'], True)}]")
    if entry.get(f"vs_{name}_detectable") is not None:
        parts.append(f"the rows detect {_pct(entry[f'vs_{name}_detectable'])} points at 80% power")
    if len(entry.get(f"vs_{name}_per_seed") or []) > 1:
        parts.append("by seed " + ", ".join(_pct(value, True) for value in entry[f"vs_{name}_per_seed"]))
    return "; ".join(parts)


def teacher_text(teacher: dict[str, Any] | None) -> str:
    """The teacher's accuracy on its test rows, by its best reading, and before fine-tuning (on its own rows)."""
    if not teacher:
        return "n/a"
    text = f"{100 * teacher['accuracy'][teacher['best']]:.1f}% on its {teacher.get('split') or 'test'} rows " \
           f"({teacher['best'].replace('_', ' ')})"
    before = teacher.get("before_finetuning")
    if before:
        on = f" on {before['split']}" if before.get("split") not in (None, teacher.get("split")) else ""
        text += f"; {100 * before['accuracy'][before['best']]:.1f}% before fine-tuning{on}"
    return text


TABLE_HEADERS = ("task", "teacher accuracy", "student", "train size", "mode", "method", "k", "target", "seeds",
                 "test rows", "accuracy (mean ± sd)", "vs standard [95% interval over seeds]",
                 "vs random words [95% interval over seeds]", "row x seed pairs right only here / only under standard")
# Only in a table that holds cells of another --task-marker than the paper's.
FORMAT_HEADER = "vs paper format [95% interval over seeds]"
# What the comparison columns' figures mean, for every front end that prints the table.
TABLE_LEGEND = ("Accuracy is the mean ± sd over training seeds. Each comparison is the paired difference in points "
                "on the seeds both cells ran, with its 95% interval over those seeds (random effects): the interval "
                "a claim about the method rests on; on one seed there is none. Its interval over the test rows, "
                "which holds the trained students fixed, and each seed's difference are its details (in the "
                "report: hover the figure; here: the verdict table's last column).")


def teacher_texts(teachers: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per task, its teacher check as the table's "teacher accuracy" cell says it."""
    return {task: teacher_text(teacher) for task, teacher in teachers.items()}


def table(summary: Sequence[dict[str, Any]], teachers: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """The summary as headers and text cells: the table every front end prints. ``teachers``: per task, the
    teacher's figure in words (``teacher_texts`` of its check, or what a front end knows without one)."""
    rows = table_rows(summary, teachers)
    if not any(entry.get("marker") for entry in summary):
        return list(TABLE_HEADERS), rows
    for entry, row in zip(summary, rows):
        row.append(_difference_text(entry, "format"))
    return [*TABLE_HEADERS, FORMAT_HEADER], rows


def table_rows(summary: Sequence[dict[str, Any]], teachers: dict[str, str]) -> list[list[str]]:
    """The summary as text cells under ``TABLE_HEADERS``."""
    rows = []
    for entry in summary:
        k = "" if entry["k"] is None else f"{entry['k']:g}"
        accuracy = _pct(entry["mean"]) + ("" if entry["sd"] is None else f" ± {_pct(entry['sd'])}")
        wins = "" if entry.get("only_here") is None else f"{entry['only_here']} / {entry['only_standard']}"
        rows.append([str(entry["task"]), teachers.get(str(entry["task"]), "n/a"), str(entry["student"] or ""),
                     str(entry["size"] or ""), mode_text(entry), str(entry["method"] or ""), k,
                     str(entry["target"] or ""), str(entry["seeds"]), str(entry["test_rows"] or ""), accuracy,
                     _difference_text(entry, BASELINE_MODE), _difference_text(entry, "control"), wins])
    return rows


def table_details(summary: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Per row of ``table``, the detail of each comparison column, by its header (the report's tooltips)."""
    names = {TABLE_HEADERS[11]: BASELINE_MODE, TABLE_HEADERS[12]: "control", FORMAT_HEADER: "format"}
    return [{header: detail for header, name in names.items() if (detail := _difference_detail(entry, name))}
            for entry in summary]


def results_markdown(summary: Sequence[dict[str, Any]], teachers: dict[str, dict[str, Any]]) -> str:
    headers, rows = table(summary, teacher_texts(teachers))
    lines = ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + TABLE_LEGEND + "\n"


def seed_table(rows: list[dict[str, Any]]) -> str:
    """Every finished cell's accuracy, one column per seed: where the means come from."""
    seeds = sorted({row["seed"] for row in rows}, key=str)
    cells: dict[tuple[str, ...], dict[Any, float]] = defaultdict(dict)
    for row in rows:
        k = "" if row.get("k") is None else f"{row['k']:g}"
        key = (str(row["task"]), str(row.get("student") or ""), str(row.get("size") or ""), mode_text(row),
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
               *(f"vs_{name}_{field}" for name in COMPARISONS
                 for field in ("re_low", "re_high", "re_tau", "re_i2", "re_p", "re_seeds_needed", "claim")))
VERDICT_COLUMNS = ("task", "student", "size", "comparison", "primary", "seeds", "difference", "low", "high", "tau",
                   "tau_low", "tau_high", "i2", "q", "p", "p_holm", "seeds_needed", "claim", "rows_low", "rows_high")


def verdict_markdown(found: Sequence[dict[str, Any]], effect: float | None) -> str:
    """The comparisons at the level of training seeds, the declared ones first, with what each may claim."""
    if not found:
        return ""
    against = f"±{100 * effect:g} points, the effect of interest the grid declared" if effect else "no declared effect"
    lines = [
        "Every comparison at the level of training seeds: each seed's difference is one observation (random effects "
        "over seeds, DerSimonian-Laird; 95% interval by Hartung-Knapp on seeds - 1 degrees of freedom; the "
        "between-seed sd with its 95% Q-profile interval, which shows how little a few seeds say of it). A claim "
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
            "" if row["tau"] is None else f"{_pct(row['tau'])} [{_pct(row['tau_low'])}, {_pct(row['tau_high'])}]",
            "" if row["i2"] is None else f"{100 * row['i2']:.0f}%",
            "" if p_value is None else f"{p_value:.2g}", "" if row["seeds_needed"] is None else str(row["seeds_needed"]),
            row["claim"] or "",
            "" if row["rows_low"] is None else f"[{_pct(row['rows_low'], True)}, {_pct(row['rows_high'], True)}]",
        ]) + " |")
    return "\n".join(lines) + "\n"


def _claim_line(row: dict[str, Any], effect: float | None, planned: int | None, corrected: float | None = None) -> str:
    text = _claim_text(row, effect)
    if corrected is not None and corrected >= 0.05:
        # The grid's rule leaves the declared comparisons uncorrected for each other; say what a correction would do.
        text += (f" Not corrected for the other declared comparisons: with Holm's correction over them its p "
                 f"{row['p']:.2g} would be {corrected:.2g}, and it would read inconclusive.")
    if planned and row["seeds"] < planned:
        text += f" Interim: {row['seeds']} of the {planned} seeds planned."
    return text


def _claim_text(row: dict[str, Any], effect: float | None) -> str:
    if not row.get("claim"):
        return f"- {row['comparison']}: {row['seeds']} seed, no claim (a claim needs two seeds of both cells)."
    interval = f"{_pct(row['difference'], True)} points over {row['seeds']} seeds, 95% [{_pct(row['low'], True)}, " \
               f"{_pct(row['high'], True)}]"
    why = ""
    if row["claim"] == "inconclusive" and row.get("seeds_needed") and effect:
        why = f"; about {row['seeds_needed']} seeds would detect {100 * effect:g} points at 80% power"
    elif row["claim"] in ("excluded", "established") and effect and -effect < row["low"] and row["high"] < effect:
        why = f", inside ±{100 * effect:g} points" + (" (smaller than the effect declared worth finding)"
                                                       if row["claim"] == "established" else "")
    return f"- **{row['claim']}**: {row['comparison']} ({row['task']}): {interval}{why}."


# The first words of results.md's claims section (tools/figures.py quotes the section from there).
CLAIMS_HEADING = "What the seeds allow"


def claims_markdown(found: Sequence[dict[str, Any]], effect: float | None, planned: int | None = None) -> str:
    """What the seeds allow, in words: every declared comparison, then the secondary ones that are established
    after Holm's correction (the rest of those stay in the table); the README and docs quote this, not their own.
    ``planned``: the seeds the grid planned; a declared comparison on fewer says that its claim is interim."""
    declared = [row for row in found if row["primary"]]
    established = [row for row in found if not row["primary"] and row.get("claim") == "established"]
    if not declared and not established:
        return ""
    lines = [CLAIMS_HEADING + (f" (against the declared {100 * effect:g} points)" if effect else "") + ":", ""]
    tested = [row for row in declared if row.get("p") is not None]
    corrected = dict(zip(map(id, tested), holm([row["p"] for row in tested]))) if len(tested) > 1 else {}
    lines += [_claim_line(row, effect, planned, corrected.get(id(row)) if row.get("claim") == "established" else None)
              for row in declared]
    secondary = sum(not row["primary"] for row in found)
    if established:
        lines += [_claim_line(row, effect, None) for row in established]
    lines.append(f"- Of the {secondary} secondary comparisons, {len(established) or 'none'} "
                 f"{'is' if len(established) == 1 else 'are'} established after Holm's correction"
                 + (" (above)." if established else "."))
    return "\n".join(lines) + "\n"


def render_results(root: Path) -> dict[str, str]:
    """The results files of every finished cell under ``root``, by name: results.md, results.csv, verdict.csv."""
    rows, teachers = collect(root)
    effect, primary = declarations(root)
    summary = summarize(rows, teachers, effect)
    table = results_markdown(summary, teachers)
    found = verdict(summary, rows, effect, primary)
    if found:
        table += "\n" + verdict_markdown(found, effect)
        if claims := claims_markdown(found, effect, planned_seeds(root)):
            table += "\n" + claims
    if rows:
        table += "\nAccuracy (%) of each finished cell, by seed:\n\n" + seed_table(rows)
    files = {RESULTS_MD: table}
    for name, columns, records in ((RESULTS_CSV, CSV_COLUMNS, summary), (VERDICT_CSV, VERDICT_COLUMNS, found)):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")  # per-seed lists: Markdown
        writer.writeheader()
        writer.writerows(records)
        files[name] = buffer.getvalue()
    return files


def write_results(root: Path) -> str:
    """results.md and results.csv of every finished cell under ``root`` (and verdict.csv); returns the Markdown."""
    files = render_results(root)
    for name, text in files.items():
        write_file(root / name, text)
    return files[RESULTS_MD]


@dataclass(kw_only=True)
class ResultsConfig:
    folder: str = option(dataclasses.MISSING, "a grid folder written by `tokendistill run`", positional=True)


def results_command(config: ResultsConfig) -> str:
    root = Path(config.folder)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the output folder of `tokendistill run`")
    return write_results(root) + f"\nresults: wrote {RESULTS_MD}, {RESULTS_CSV} and {VERDICT_CSV} in {root}"
