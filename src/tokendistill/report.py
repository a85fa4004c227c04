"""The report: one self-contained HTML file for any run folder (extract, train/evaluate, a grid, the demo).

The report reads what the stages wrote (rationale folders, students, evaluations) wherever they sit under
the run folder; it loads no model. Everything is inline (styles, script, PNG plots as data URLs) so that the
file opens offline, from an e-mail or an artifact store, exactly as it was written.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import math
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
from tokendistill.config import option
from tokendistill.errors import UserError
from tokendistill.folders import read_json_or_empty, read_records, write_file
from tokendistill.plots import (
    plot_accuracy,
    plot_accuracy_by_k,
    plot_agreement,
    plot_learning_curves,
    plot_overlap_by_k,
    plot_overlap_by_task,
)
from tokendistill.rationales import iter_rationales
from tokendistill.results import collect, summarize
from tokendistill.results import table as results_table
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
def _shade(score: float | None, top: float) -> str:
    if score is None or top <= 0 or not math.isfinite(score):
        return ""
    alpha = max(0.0, min(1.0, score / top))
    return f' style="background: rgba(247, 103, 7, {alpha:.2f})"'


def _teacher_answer(record: dict[str, Any]) -> str:
    answer = record.get("teacher_answer")
    return "not asked (--target gold)" if answer is None else (answer or "(nothing)")


# Characters of an example's input that the report shows: the page grows with the number of examples, not with
# their length (a 1 MB input made a 7.8 MB page); the whole input stays in records.jsonl.
TEXT_CAP = 2000
ANSWER_CAP = 200


def _capped(text: str, cap: int = ANSWER_CAP) -> str:
    return text if len(text) <= cap else text[:cap] + f"… ({len(text) - cap:,} more characters)"


def _well_formed(record: dict[str, Any]) -> bool:
    """Whether a record's word lists agree with each other and with its input (a damaged one is shown as text)."""
    spans, words, scores = record.get("word_spans"), record.get("words"), record.get("word_scores")
    text = record.get("input")
    if not (isinstance(text, str) and isinstance(spans, list) and isinstance(words, list) and isinstance(scores, list)
            and len(spans) == len(words) == len(scores)):
        return False
    cursor = 0
    for span, score in zip(spans, scores):
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)
                and cursor <= span[0] <= span[1] <= len(text)) or not (score is None or isinstance(score, (int, float))):
            return False
        cursor = span[1]
    return True


def render_example(record: dict[str, Any], predictions: dict[str, dict[str, Any]]) -> str:
    """One example: the input with each word shaded by its teacher score (its first TEXT_CAP characters), then
    answers and predictions."""
    text = str(record.get("input", ""))
    shown = min(len(text), TEXT_CAP)
    pieces, cursor = [], 0
    if _well_formed(record):
        scores = [s for s in record["word_scores"] if s is not None and math.isfinite(s)]
        top = max(scores) if scores else 0.0
        chosen = set(record.get("rationale_positions", []) or [])
        roles = record.get("word_roles") or [""] * len(record["words"])
        for index, ((start, end), word, role) in enumerate(zip(record["word_spans"], record["words"], roles)):
            if end > shown:
                shown = start if start <= shown else shown
                break
            pieces.append(html.escape(text[cursor:start]))
            score = record["word_scores"][index]
            if score is None and index not in chosen:
                pieces.append(html.escape(text[start:end]))  # no score (past the teacher's truncation): plain text
            else:
                classes = ["w"] + (["r"] if index in chosen else []) + (["t"] if role == "template" else [])
                title = f"{score:.4g}" if score is not None else "no score"
                pieces.append(f'<span class="{" ".join(classes)}" title="{title}"{_shade(score, top)}>'
                              f'{html.escape(str(word))}</span>')
            cursor = end
    pieces.append(html.escape(text[cursor:shown]))
    if shown < len(text):
        pieces.append(f'<span class="note"> … {len(text) - shown:,} more characters: the whole input is in the '
                      "records file (records.jsonl), under this example's id</span>")
    teacher = {True: "right", False: "wrong"}.get(record.get("teacher_correct"), "unknown")
    attributes = [f'data-teacher="{teacher}"']
    lines = [
        f'<div class="answers"><span>gold: <b>{html.escape(_capped(str(record.get("target", ""))))}</b></span>',
        f'<span class="{teacher}">teacher: <b>{html.escape(_capped(_teacher_answer(record)))}</b></span>',
        f'<span>rationale: <i>{html.escape(_capped(" ".join(map(str, record.get("rationale") or []))))}</i></span>'
        "</div>",
    ]
    if predictions:
        lines.append('<div class="answers">')
        for mode, prediction in sorted(predictions.items()):
            verdict = "right" if prediction["correct"] else "wrong"
            attributes.append(f'data-student-{_slug(mode)}="{verdict}"')
            answer = html.escape(_capped(str(prediction.get("prediction", ""))))
            lines.append(f'<span class="{verdict}">{html.escape(mode)}: <b>{answer}</b></span>')
        lines.append("</div>")
    return (f'<article class="example" {" ".join(attributes)}><div class="id">{html.escape(str(record["id"]))}</div>'
            f'<p class="text">{"".join(pieces)}</p>{"".join(lines)}</article>')


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())


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


CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212529;background:#f8f9fa}
main{max-width:1100px;margin:auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #dee2e6}
table{border-collapse:collapse;margin:8px 0;background:#fff;font-size:13px}
td,th{border:1px solid #dee2e6;padding:4px 8px;text-align:left} th{background:#f1f3f5}
.plots{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;background:#fff;padding:8px;border:1px solid #dee2e6}
figure img{display:block;max-width:100%;width:500px} figcaption{font-size:12px;color:#495057}
details{margin:4px 0} pre{background:#fff;border:1px solid #dee2e6;padding:8px;overflow:auto;font-size:12px}
.example{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:10px 14px;margin:10px 0}
.example .id{font-size:11px;color:#868e96} .text{white-space:pre-wrap;margin:4px 0}
.w{border-radius:3px;padding:0 1px} .w.r{outline:2px solid #c92a2a;font-weight:600} .w.t{color:#adb5bd}
.answers{display:flex;flex-wrap:wrap;gap:16px;font-size:13px}
.right b{color:#2b8a3e} .wrong b{color:#c92a2a}
.filters{position:sticky;top:0;background:#f8f9fa;padding:8px 0;display:flex;gap:12px;align-items:center;z-index:1}
.note{color:#495057;font-size:13px}
caption{caption-side:top;text-align:left;font-size:12px;color:#495057;padding:4px 0}
.legend{display:flex;gap:8px;align-items:center;font-size:12px;margin:4px 0}
.legend .gradient{display:inline-block;width:120px;height:12px;border:1px solid #dee2e6;
 background:linear-gradient(to right,rgba(247,103,7,0),rgba(247,103,7,1))}
"""

SCRIPT = """
let page=0;
function applyFilters(keepPage){
  if(!keepPage)page=0;
  const teacher=document.getElementById('f-teacher').value;
  const mode=document.getElementById('f-mode').value;
  const student=document.getElementById('f-student').value;
  const matching=[];
  for(const el of document.querySelectorAll('.example')){
    let ok=teacher==='any'||el.dataset.teacher===teacher;
    if(ok&&mode&&student!=='any'){ok=el.getAttribute('data-student-'+mode)===student;}
    el.style.display='none'; if(ok)matching.push(el);
  }
  const size=(typeof PAGE_SIZE==='number')?PAGE_SIZE:50;
  const pages=Math.max(1,Math.ceil(matching.length/size));
  page=Math.min(page,pages-1);
  matching.slice(page*size,(page+1)*size).forEach(el=>{el.style.display='';});
  document.getElementById('shown').textContent=matching.length;
  document.getElementById('page').textContent=' page '+(page+1)+' of '+pages+' ';
  document.getElementById('prev').disabled=page===0;
  document.getElementById('next').disabled=page>=pages-1;
}
for(const id of ['f-teacher','f-mode','f-student']){document.getElementById(id).addEventListener('change',()=>applyFilters(false));}
document.getElementById('prev').addEventListener('click',()=>{page--;applyFilters(true);});
document.getElementById('next').addEventListener('click',()=>{page++;applyFilters(true);});
applyFilters(false);
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
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
    views = [folder_views for _, folder_views in analyzed]
    agreement = []
    for i in range(len(analyses)):
        for j in range(i + 1, len(analyses)):
            same_examples = (analyses[i]["task"], analyses[i]["split"]) == (analyses[j]["task"], analyses[j]["split"])
            if same_examples and analyses[i]["method"] != analyses[j]["method"]:
                agreement.append({"method_a": analyses[i]["method"], "method_b": analyses[j]["method"],
                                  **method_agreement(views[i], views[j])})
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
    sections = [f"<h1>tokendistill report</h1><p class='note'>{html.escape(str(run_dir.resolve()))}</p>"]

    sections.append("<h2 id='results'>Results</h2>")
    if table:
        # The same table as `tokendistill results` prints (one owner: tokendistill.results).
        sections.append(_table(*results_table(table, teachers),
                               "Student accuracy per cell (every factor but the seed): mean ± sd over seeds; against "
                               "standard and against random words, the paired difference with its 95% interval over "
                               "the test rows, and the smallest difference the design detects at 80% power."))
    else:
        sections.append("<p class='note'>No evaluations in this run.</p>")
    if analyses and not any(a["answer_overlap"]["gold"]["all"]["answer_in_input"] for a in analyses):
        sections.append("<p class='note'>The answers never occur in these inputs (a classification's labels, say), "
                        "so whether the teacher's words hold the answer cannot be measured; below, which words and "
                        "input parts it picks.</p>")
    elif analyses:
        sections.append(_table(
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
        ))

    sections.append("<h2 id='plots'>Plots</h2><div class='plots'>")
    for caption, image in plots:
        if image:
            sections.append(f"<figure><img alt='{html.escape(caption)}' src='{image}'><figcaption>{html.escape(caption)}"
                            "</figcaption></figure>")
    sections.append("</div>")

    if analyses:
        sections.append("<h2 id='words'>Which words the teacher picks</h2><div class='plots'>")
        for a in analyses:
            sections.append(f"<div><b>{html.escape(_rationale_title(a))}</b>")
            sections.append(_table(["word", "count", "lift"], [
                [w["word"], w["count"], "" if w["lift"] is None else f"{w['lift']:.2f}"] for w in a["frequent_words"][:15]],
                "The commonest rationale words. Lift: the word's share of the rationale words over its share of "
                "the candidate words (2 = picked twice as often as it occurs)."))
            sections.append(_table(["input part", "rationale words", "candidate words"], [
                [role, _pct(v["rationale_share"]), _pct(v["candidate_share"])] for role, v in a["positions"].items()],
                "Where the rationale words sit, against where the candidate words sit."))
            sections.append("</div>")
        sections.append("</div>")

    predictions, sources = predictions_by_example(students)
    sections.append(_examples_section(contents.rationale_folders, predictions, config.max_examples, sources,
                                      config.page_size))

    sections.append("<h2 id='config'>Configuration</h2>")
    for path in contents.configs:
        relative = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        sections.append(f"<details><summary>{html.escape(str(relative))}</summary><pre>"
                        f"{html.escape(path.read_text(encoding='utf-8', errors='replace')[:20_000])}</pre></details>")

    page = (f"{PAGE_START}"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body><main>{''.join(sections)}</main><script>{SCRIPT}</script></body></html>")
    if problem := report_output_problem(output):  # again: the page took a while, and the path may have changed
        raise UserError(problem)
    write_file(output, page)
    if config.open:
        webbrowser.open(output.resolve().as_uri())
    return output


def _rationale_title(analysis: dict[str, Any]) -> str:
    """A rationale set's name: task, split, method and teacher (two sets never share one)."""
    teacher = Path(str(analysis.get("teacher") or "?")).name
    return f"{analysis['task']} · {analysis.get('split')} · {analysis['method']} · teacher {teacher}"


def _examples_section(folders: Sequence[Path], predictions: dict[str, dict[str, Any]], limit: int | None,
                      sources: dict[str, str] | None = None, page_size: int = 50) -> str:
    modes = sorted({mode for by_mode in predictions.values() for mode in by_mode})
    options = "".join(f"<option value='{_slug(m)}'>{html.escape(m)}</option>" for m in modes)
    parts = [
        "<h2 id='examples'>Examples</h2>",
        "<div class='filters'><label>teacher <select id='f-teacher'><option>any</option><option>right</option>"
        "<option>wrong</option></select></label>",
        f"<label>student <select id='f-mode'><option value=''>(mode)</option>{options}</select></label>",
        "<select id='f-student'><option>any</option><option>right</option><option>wrong</option></select>",
        "<span class='note'><span id='shown'></span> match</span>",
        "<button id='prev' type='button'>previous</button><span class='note' id='page'></span>"
        "<button id='next' type='button'>next</button></div>",
        "<div class='legend' id='legend'><span class='note'>teacher's score:</span> <span class='scale'>low</span>"
        "<span class='gradient'></span><span class='scale'>high</span> <span class='w r'>rationale word</span> "
        "<span class='w t'>template</span> <span class='note'>(hover a word for its score)</span></div>",
    ]
    if sources:
        parts.append("<p class='note'>Students shown: " + "; ".join(
            f"{html.escape(column)} from {html.escape(source)}" for column, source in sorted(sources.items()))
            + " (of several seeds, the first).</p>")
    if not folders:
        return "".join(parts[:1]) + "<p class='note'>No rationales in this run.</p>"
    # The folder whose examples the students were evaluated on, if any; else the first.
    # Read each folder once for its overlap with the predictions.
    overlap = {folder: sum(1 for r in iter_rationales(folder) if r["id"] in predictions) for folder in folders}
    best = max(folders, key=lambda folder: overlap[folder])
    shown = 0
    for record in iter_rationales(best):
        if limit is not None and shown >= limit:
            break
        parts.append(render_example(record, predictions.get(record["id"], {})))
        shown += 1
    if not overlap[best] and predictions:
        parts.insert(5, "<p class='note'>The students were evaluated on another split than the one attributed, so "
                        "their predictions are not shown next to these examples.</p>")
    parts.append(f"<p class='note'>{shown} examples from {html.escape(str(best))}.</p>")
    parts.append(f"<script>const PAGE_SIZE={int(page_size)};</script>")
    return "".join(parts)
