"""The report's page: its style and script, and each example rendered (the input's words shaded by the teacher's
score, capped so that the page grows with the number of examples, not with their length)."""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokendistill.rationales import iter_rationales

log = logging.getLogger(__name__)



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
td.detailed{text-decoration:underline dotted;cursor:help}
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



def rationale_title(analysis: dict[str, Any]) -> str:
    """A rationale set's name: task, split, method, the answer attributed, k and teacher, and its folder's name (two
    sets of the same settings in two folders never share a heading)."""
    teacher = Path(str(analysis.get("teacher") or "?")).name
    k = analysis.get("top_k")
    settings = [str(analysis["task"]), str(analysis.get("split")), str(analysis["method"]),
                *([f"target {analysis['target']}"] if analysis.get("target") else []),
                *([f"k {k:g}"] if isinstance(k, (int, float)) else []), f"teacher {teacher}"]
    folder = Path(str(analysis["folder"])).name if analysis.get("folder") else None
    return " · ".join(settings) + (f" ({folder})" if folder else "")


def examples_section(folders: Sequence[Path], predictions: dict[str, dict[str, Any]], limit: int | None,
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
