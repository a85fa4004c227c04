"""The report: one self-contained HTML file for any run folder (extract, train/evaluate, a grid, the demo).

The report reads what the stages wrote (rationale folders, students, evaluations) wherever they sit under
the run folder; it loads no model. Everything is inline (styles, script, PNG plots as data URLs) so that the
file opens offline, from an e-mail or an artifact store, exactly as it was written.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import webbrowser
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokendistill.analysis import SUBSETS, analyze_folder
from tokendistill.analysis import agreement as method_agreement
from tokendistill.artefacts import (
    CONFIG,
    MANIFEST,
    METRICS,
    PREDICTIONS,
    RECORDS,
    REPORT,
    STUDENT_INFO,
)
from tokendistill.cells import BASELINE_MODE
from tokendistill.errors import UserError
from tokendistill.folders import read_json_or_empty, read_records, write_file
from tokendistill.options import option
from tokendistill.plots import (
    plot_accuracy,
    plot_accuracy_by_k,
    plot_agreement,
    plot_learning_curves,
    plot_overlap_by_k,
    plot_overlap_by_task,
)
from tokendistill.report_page import CSS, SCRIPT, examples_section, rationale_title
from tokendistill.results import (
    TABLE_LEGEND,
    cell_label,
    claims_markdown,
    collect,
    declarations,
    planned_seeds,
    summarize,
    table_details,
    teacher_text,
    teacher_texts,
    verdict,
    verdict_markdown,
)
from tokendistill.results import table as results_table
from tokendistill.results.summary import mode_text
from tokendistill.student import StudentRecord, record_or_none

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class ReportConfig:
    run_dir: str = option(dataclasses.MISSING, "a folder written by extract, train, evaluate, run or demo", positional=True)
    output: str | None = option(None, "HTML file to write (default: RUN_DIR/report.html)")
    max_examples: int | None = option(None, "examples to list, paged (default: every one; the file grows about "
                                            "2 KB per example)", minimum=1)
    page_size: int = option(50, "examples per page", minimum=1)
    max_k: int = option(10, "largest k of the share-vs-k plot", minimum=1)
    open: bool = option(False, "open the report in a browser when it is written")


@dataclass
class Evaluation:
    folder: Path
    metrics: dict[str, Any]
    predictions: dict[str, dict[str, Any]]
    student: StudentRecord | None  # the student's record (None when unknown)

    @property
    def mode(self) -> str:
        return str(self.metrics.get("mode") or (self.student.mode if self.student else None) or "model")

    @property
    def model_name(self) -> str:
        config = self.student.config if self.student else {}
        return Path(str(config.get("student", self.metrics.get("model", "")))).name


@dataclass
class RunContents:
    rationale_folders: list[Path] = field(default_factory=list)
    students: list[Path] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    configs: list[Path] = field(default_factory=list)


def discover(run_dir: Path) -> RunContents:
    """Every stage output under ``run_dir``, found by the files each stage writes."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; pass the --output folder of extract, train, evaluate, run or demo")
    contents = RunContents()
    for path in sorted(run_dir.rglob("*")):
        if path.name == MANIFEST and (path.parent / RECORDS).exists():
            contents.rationale_folders.append(path.parent)
        elif path.name == STUDENT_INFO:  # a student folder, found by its record's name (read in student.py)
            contents.students.append(path.parent)
        elif path.name == METRICS and (path.parent / PREDICTIONS).exists():
            metrics = read_json_or_empty(path)
            predictions = {record["id"]: record for record in read_records(path.parent / PREDICTIONS)}
            model = Path(str(metrics.get("model", "")))
            student = record_or_none(model) if model.is_dir() else None
            contents.evaluations.append(Evaluation(path.parent, metrics, predictions, student))
        elif path.name == CONFIG:
            contents.configs.append(path)
    if not (contents.rationale_folders or contents.evaluations or contents.students):
        raise UserError(f"{run_dir} holds no rationales, students or evaluations; run a stage into it first")
    return contents


# ----- tables and examples ----------------------------------------------------------------------------------
def predictions_by_example(
    evaluations: Sequence[Evaluation],
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, str]]:
    """id -> {column: prediction}, one column per mode (and model, where several were evaluated), and the
    evaluation folder each column shows; of several seeds the first is shown, which keeps the list readable."""
    several_models = len({evaluation.model_name for evaluation in evaluations}) > 1
    chosen: dict[str, Evaluation] = {}
    for evaluation in sorted(evaluations, key=lambda e: str(e.folder)):
        column = f"{evaluation.mode} · {evaluation.model_name}" if several_models else evaluation.mode
        chosen.setdefault(column, evaluation)
    result: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for column, evaluation in chosen.items():
        for example_id, prediction in evaluation.predictions.items():
            result[example_id][column] = prediction
    return result, {column: str(evaluation.folder) for column, evaluation in chosen.items()}


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "",
           details: Sequence[dict[str, str]] = ()) -> str:
    """An HTML table; ``details``: per row, a column's detail by its header, shown when the figure is hovered."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)

    def cell(header: str, value: Any, detail: str) -> str:
        if not detail:
            return f"<td>{html.escape(str(value))}</td>"
        return f"<td class='detailed' title='{html.escape(detail, quote=True)}'>{html.escape(str(value))}</td>"

    row_details = list(details) or [{} for _ in rows]
    body = "".join("<tr>" + "".join(cell(h, c, d.get(h, "")) for h, c in zip(headers, row)) + "</tr>"
                   for row, d in zip(rows, row_details))
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _resolved(path: Any) -> str | None:
    return str(Path(str(path)).resolve()) if path else None


PAGE_START = "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>tokendistill report</title>"


def report_output_problem(output: Path) -> str | None:
    """Where a report may go: a new file, or a report of ours (replaced). Never a link, a folder, or any other
    file (the records it reads, a user's page): writing there would destroy it."""
    if output.is_symlink():
        return f"--output {output} is a symbolic link; tokendistill never writes through a link: remove it"
    if output.exists():
        if not output.is_file():
            return f"--output {output} is not a file; give a path for the HTML report, e.g. report.html"
        with output.open("rb") as handle:
            if not handle.read(len(PAGE_START)).decode("utf-8", errors="replace").startswith(PAGE_START):
                return (f"--output {output} exists and is not a tokendistill report; writing there would replace "
                        "it: choose a new path, e.g. report.html")
    return None


def build_report(config: ReportConfig) -> Path:
    run_dir = Path(config.run_dir)
    output = Path(config.output) if config.output else run_dir / REPORT
    if problem := report_output_problem(output):
        raise UserError(problem)
    contents = discover(run_dir)
    analyzed = [analyze_folder(folder, config.max_k) for folder in contents.rationale_folders]
    analyses = [result for result, _ in analyzed]
    agreement = _agreement(analyses, [folder_views for _, folder_views in analyzed])
    # A teacher evaluated beside the students (the demo checks its teacher) is no student: not in their table.
    teacher_folders = {_resolved(a.get("teacher")) for a in analyses} - {None}
    students = [e for e in contents.evaluations if _resolved(e.metrics.get("model")) not in teacher_folders]
    rows, teachers = collect(run_dir)
    rows = [row for row in rows if _resolved(row.get("model")) not in teacher_folders]
    table = summarize(rows, teachers)
    plots = [
        ("Answer overlap by task", plot_overlap_by_task(analyses)),
        ("Answer overlap vs k", plot_overlap_by_k(analyses)),
        ("Student accuracy", plot_accuracy(table)),
        ("Student accuracy vs k", plot_accuracy_by_k(table)),
        ("Learning curves", plot_learning_curves([f for f in contents.students if _resolved(f) not in teacher_folders])),
        ("Method agreement", plot_agreement(agreement)),
    ]
    predictions, sources = predictions_by_example(students)
    sections = [f"<h1>tokendistill report</h1><p class='note'>{html.escape(str(run_dir.resolve()))}</p>",
                f"<p id='opening'>{html.escape(opening(table, teachers, analyses))}</p>",
                *_results_section(run_dir, table, rows, {**attributed_teachers(analyses), **teacher_texts(teachers)}),
                *_overlap_section(analyses),
                *_plots_section(plots), *_words_section(analyses),
                examples_section(contents.rationale_folders, predictions, config.max_examples, sources,
                                  config.page_size),
                *_config_section(contents.configs, run_dir)]
    page = (f"{PAGE_START}"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body><main>{''.join(sections)}</main><script>{SCRIPT}</script></body></html>")
    if problem := report_output_problem(output):  # again: the page took a while, and the path may have changed
        raise UserError(problem)
    write_file(output, page)
    if config.open:
        webbrowser.open(output.resolve().as_uri())
    return output


def opening(table: list[dict[str, Any]], teachers: dict[str, dict[str, Any]], analyses: list[dict[str, Any]]) -> str:
    """What ran, on what, and the headline, in plain sentences: what a reader needs before any table."""
    sentences = []
    tasks = sorted({str(entry["task"]) for entry in table} | {str(a["task"]) for a in analyses})
    if table:
        modes = sorted({mode_text(entry) for entry in table})
        seeds = max(entry["seeds"] for entry in table)
        sentences.append(f"{len(table)} student cell{'s' * (len(table) > 1)} ({', '.join(modes)}; up to {seeds} "
                         f"seed{'s' * (seeds > 1)} each) on {', '.join(tasks)}.")
    for task in tasks:
        if teachers.get(task):
            sentences.append(f"The teacher on {task}: {teacher_text(teachers[task])}.")
        else:
            for a in (a for a in analyses if a["task"] == task and a["teacher_accuracy"] is not None):
                trained = (f", {a['teacher_trained_on']} of which it was fine-tuned on (a training accuracy, not a "
                           "test one)") if a.get("teacher_trained_on") else ""
                sentences.append(f"The teacher on {task} ({a['method']} words): right on {_pct(a['teacher_accuracy'])} "
                                 f"of the {a['examples']} examples it was attributed on{trained}.")
    standard = {(e["task"], e["student"], e["size"]): e for e in table if e["mode"] == BASELINE_MODE}
    others = [e for e in table if e["mode"] != BASELINE_MODE and (e["task"], e["student"], e["size"]) in standard]
    if others:
        best = max(others, key=lambda e: e["mean"])
        base = standard[best["task"], best["student"], best["size"]]
        seeds = best["vs_standard_seeds"]
        paired = ("" if best["vs_standard"] is None else f"; on the {seeds} seed{'s' * (seeds > 1)} both ran, "
                  f"{100 * best['vs_standard']:+.1f} points")
        sentences.append(f"Best cell: {cell_label(best)} at {_pct(best['mean'])} ({best['seeds']} seed"
                         f"{'s' * (best['seeds'] > 1)}), against {_pct(base['mean'])} for {BASELINE_MODE} "
                         f"({base['seeds']} seed{'s' * (base['seeds'] > 1)}){paired}; whether it holds over "
                         "training seeds is in the comparisons below.")
    return " ".join(sentences) or "Nothing was trained or evaluated in this folder yet."


def attributed_teachers(analyses: list[dict[str, Any]]) -> dict[str, str]:
    """Per task without a teacher check, the teacher's accuracy on the rows it was attributed on, worded as the
    opening words it: the table and the opening give one figure."""
    found: dict[str, str] = {}
    for a in analyses:
        if a["teacher_accuracy"] is not None and a["task"] not in found:
            trained = f", {a['teacher_trained_on']} of them fine-tuned on" if a.get("teacher_trained_on") else ""
            found[a["task"]] = (f"{_pct(a['teacher_accuracy'])} on the {a['examples']} rows its words were attributed "
                                f"on{trained}")
    return found


def _agreement(analyses: list[dict[str, Any]], views: list[Any]) -> list[dict[str, Any]]:
    """Every pair of methods run on the same examples: how far their words agree."""
    agreement = []
    for i in range(len(analyses)):
        for j in range(i + 1, len(analyses)):
            same_examples = (analyses[i]["task"], analyses[i]["split"]) == (analyses[j]["task"], analyses[j]["split"])
            if same_examples and analyses[i]["method"] != analyses[j]["method"]:
                agreement.append({"method_a": analyses[i]["method"], "method_b": analyses[j]["method"],
                                  **method_agreement(views[i], views[j])})
    return agreement


def _results_section(run_dir: Path, table: list[dict[str, Any]], rows: list[dict[str, Any]],
                     teachers: dict[str, str]) -> list[str]:
    sections = ["<h2 id='results'>Results</h2>"]
    if not table:
        return [*sections, "<p class='note'>No evaluations in this run.</p>"]
    # The same tables as `tokendistill results` prints (one owner: tokendistill.results), the rows' figures as details.
    sections.append(_table(*results_table(table, teachers), TABLE_LEGEND.replace(
        "(in the report: hover the figure; here: the verdict table's last column)", "(hover the figure)"),
        details=table_details(table)))
    effect, primary = declarations(run_dir)
    if found := verdict(table, rows, effect, primary):
        markdown = verdict_markdown(found, effect).splitlines()
        headers = [cell.strip() for cell in markdown[2].strip("|").split("|")]
        cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown[4:]]
        sections.append("<h3 id='verdict'>Every comparison at the level of training seeds</h3>")
        if claims := claims_markdown(found, effect, planned_seeds(run_dir)).splitlines():
            # results.md's words for the claims, as a list: bold claim, then the comparison and its figures.
            items = "".join("<li>" + re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(line[2:])) + "</li>"
                            for line in claims if line.startswith("- "))
            sections.append(f"<p>{html.escape(claims[0])}</p><ul class='claims'>{items}</ul>")
        sections.append(_table(headers, cells, markdown[0]))
    return sections


def _overlap_section(analyses: list[dict[str, Any]]) -> list[str]:
    if analyses and not any(a["answer_overlap"]["gold"]["all"]["answer_in_input"] for a in analyses):
        return ["<p class='note'>The answers never occur in these inputs (a classification's labels, say), so whether "
                "the teacher's words hold the answer cannot be measured; below, which words and input parts it "
                "picks.</p>"]
    if not analyses:
        return []
    return [_table(
        ["task", "method", "examples", "teacher accuracy", "subset", "answer in input", "top-k words hold a gold word",
         "random words", "random content words", "random words, same input parts"],
        [[a["task"], a["method"], a["examples"], _pct(a["teacher_accuracy"]), subset,
          a["answer_overlap"]["gold"][subset]["answer_in_input"],
          *(_pct(a["answer_overlap"]["gold"][subset]["any"].get(key))
            for key in ("rationale", "random_words", "random_content_words", "random_same_parts"))]
         for a in analyses for subset in SUBSETS],
        "How often the teacher's top-k words hold a word of the gold answer, beside three chance baselines "
        "on the same examples and k (exact expectations, not samples); 'answer in input' counts the examples "
        "where the answer occurs in the input at all.",
    )]


def _plots_section(plots: list[tuple[str, str | None]]) -> list[str]:
    figures = [f"<figure><img alt='{html.escape(caption)}' src='{image}'><figcaption>{html.escape(caption)}"
               "</figcaption></figure>" for caption, image in plots if image]
    return ["<h2 id='plots'>Plots</h2><div class='plots'>", *figures, "</div>"]


def _words_section(analyses: list[dict[str, Any]]) -> list[str]:
    if not analyses:
        return []
    sections = ["<h2 id='words'>Which words the teacher picks</h2><div class='plots'>"]
    for a in analyses:
        sections.append(f"<div><b>{html.escape(rationale_title(a))}</b>")
        sections.append(_table(["word", "count", "lift"], [
            [w["word"], w["count"], "" if w["lift"] is None else f"{w['lift']:.2f}"] for w in a["frequent_words"][:15]],
            "The commonest rationale words. Lift: the word's share of the rationale words over its share of "
            "the candidate words (2 = picked twice as often as it occurs)."))
        sections.append(_table(["input part", "rationale words", "candidate words"], [
            [role, _pct(v["rationale_share"]), _pct(v["candidate_share"])] for role, v in a["positions"].items()],
            "Where the rationale words sit, against where the candidate words sit."))
        sections.append("</div>")
    return [*sections, "</div>"]


def _config_section(configs: list[Path], run_dir: Path) -> list[str]:
    sections = ["<h2 id='config'>Configuration</h2>"]
    for path in configs:
        relative = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        sections.append(f"<details><summary>{html.escape(str(relative))}</summary><pre>"
                        f"{html.escape(path.read_text(encoding='utf-8', errors='replace')[:20_000])}</pre></details>")
    return sections


