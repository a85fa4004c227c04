"""A trained student's model card (README.md in the Hugging Face format): what it is, how it was made, and
the exact prompt that makes it answer as `tokendistill evaluate` read it, as a snippet of plain transformers."""

from __future__ import annotations

import json
import shlex
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from tokendistill.artefacts import CARD_METRICS, MANIFEST, MODEL_CARD
from tokendistill.cells import BASELINE_MODE
from tokendistill.config import TrainConfig
from tokendistill.folders import write_file
from tokendistill.options import field_names
from tokendistill.rationales import extraction_settings
from tokendistill.student import MODE_OPTIONS_SINCE, StudentPrompt, StudentRecord, load_record


def snippet(folder: str, prompt: StudentPrompt, max_new_tokens: int = 32) -> str:
    """Plain-transformers code that answers one input exactly as `evaluate` (greedy; the first non-empty line
    of a decoder's output; the label before a separator)."""
    before, after, decoder_start = prompt.parts()
    separator = prompt.answer_separator
    model_class = "AutoModelForSeq2SeqLM" if prompt.is_encoder_decoder else "AutoModelForCausalLM"
    lines = [
        f"from transformers import {model_class}, AutoTokenizer",
        f"tokenizer, model = AutoTokenizer.from_pretrained({folder!r}), {model_class}.from_pretrained({folder!r})",
        f"inputs = tokenizer({before!r} + text + {after!r}, return_tensors=\"pt\")",
    ]
    if decoder_start:
        lines.append("start = [model.generation_config.decoder_start_token_id or model.config.decoder_start_token_id]")
        lines.append(f"inputs[\"decoder_input_ids\"] = __import__(\"torch\").tensor([start + tokenizer({decoder_start!r}, "
                     "add_special_tokens=False).input_ids])")
    cut = "inputs[\"decoder_input_ids\"].shape[1]" if decoder_start else (
        "0" if prompt.is_encoder_decoder else "inputs.input_ids.shape[1]")
    answer = (f"tokenizer.decode(model.generate(**inputs, max_new_tokens={max_new_tokens}, do_sample=False)"
              f"[0, {cut}:], skip_special_tokens=True)")
    read = f"next((line.strip() for line in {answer}.splitlines() if line.strip()), \"\")"
    if separator:
        read += f".split({separator!r})[0].strip()"
    lines.append(f"answer = {read}")
    return "\n".join(lines)


def base_model_id(config: dict[str, Any]) -> str | None:
    """The hub id the student began from, for the card's metadata: --base-model-id, or --student where it is a hub
    id; never a local path (a push would publish it)."""
    for given in (config.get("base_model_id"), config.get("student")):
        if isinstance(given, str) and given and not (Path(given).expanduser().exists()
                                                     or given.startswith((".", "/", "~"))):
            return given
    return None


def mode_options(record: StudentRecord) -> str | None:
    """The options only the student's mode takes (its config class's own fields: kd's weights, align's), as numbers;
    a model they name by its folder's name (never a local path). A record older than typed mode options held every
    mode's options: none is shown."""
    config = record.config
    if record.version < MODE_OPTIONS_SINCE:
        return None
    own = sorted(set(config) - field_names(TrainConfig))
    shown = {name: Path(value).name if isinstance(value, str) else value  # a model by its folder's name
             for name in own if (value := config[name]) is not None}
    return ", ".join(f"{name} {value}" for name, value in shown.items()) or None


def card_text(folder: Path, record: StudentRecord, metrics: list[dict[str, Any]]) -> str:
    config, mode, prompt = record.config, record.mode, record.prompt
    rationales = config.get("rationales")
    teacher, extracted_k = None, None
    if rationales and (Path(rationales) / MANIFEST).is_file():
        settings = extraction_settings(rationales)
        teacher, extracted_k = settings.teacher, settings.top_k
    metadata: dict[str, Any] = {
        "library_name": "transformers",
        **({"base_model": base} if (base := base_model_id(config)) else {}),
        "tags": ["tokendistill", "distillation", mode],
        "pipeline_tag": "text2text-generation" if prompt.is_encoder_decoder else "text-generation",
    }
    if metrics:
        metadata["model-index"] = [{"name": folder.name, "results": [
            {"task": {"type": "text-classification" if record.labels else "text-generation"},
             "dataset": {"name": m.get("task"), "type": m.get("task"), "split": m.get("split")},
             "metrics": [{"type": "accuracy", "value": round(m["accuracy"], 4),
                          "name": f"accuracy ({m.get('answer', 'generation')}, {m.get('examples')} rows)"}]}
            for m in metrics]}]
    kept = (f"step {record.best_step} of {record.steps} (best {record.eval_split} accuracy "
            f"{100 * record.best_eval_accuracy:.1f}%)") if record.best_step and record.best_eval_accuracy is not None else None
    facts = [("task", config.get("task")), ("mode", mode), ("teacher (whose words it learned)", teacher),
             ("rationale words per example (k)", f"{config.get('top_k') or extracted_k:g}" if rationales and (
                 config.get("top_k") or extracted_k) else None),
             ("alpha (label loss weight)", config.get("alpha") if mode != BASELINE_MODE else None),
             ("options of its mode", mode_options(record)),
             ("training rows", record.train_examples), ("steps", record.steps), ("weights kept", kept),
             ("batch size", config.get("batch_size")), ("learning rate", config.get("learning_rate")),
             ("weight decay", config.get("weight_decay")), ("seed", config.get("seed")),
             ("labels", ", ".join(record.labels or []) or None)]
    before, after, decoder_start = prompt.parts()
    command = record.command or ""  # recorded by train from COMMAND
    lines = [
        "---", yaml.safe_dump(metadata, sort_keys=False).strip(), "---", "",
        f"# {folder.name}", "",
        f"A student trained by [tokendistill](https://pypi.org/project/tokendistill/) ({mode}): it answers the "
        f"task from its input alone; no teacher is needed at test time.", "",
        "| | |", "|---|---|",
        *[f"| {name} | {value} |" for name, value in facts if value not in (None, "")],
        "",
        "## Prompt format", "",
        f"The model reads `{before!r} + input + {after!r}`"
        + (f" and its output starts with `{decoder_start!r}`" if decoder_start else "")
        + "; its answer is the first non-empty line it writes"
        + (f", up to `{prompt.answer_separator!r}`" if prompt.answer_separator else "") + ".", "",
        "```python", "text = \"...\"  # one input, as the task formats it (a text task: the text itself)",
        snippet(str(folder), prompt), "print(answer)", "```", "",
        f"Or: `tokendistill predict --model {shlex.quote(str(folder))} \"your input\"`.", "",
    ]
    if metrics:
        lines += ["## Evaluation", "", "| task | split | rows | reading | accuracy |", "|---|---|---|---|---|"]
        lines += [f"| {m.get('task')} | {m.get('split')} | {m.get('examples')} | {m.get('answer', 'generation')} | "
                  f"{100 * m['accuracy']:.1f}% |" for m in metrics]
        lines.append("")
    if command:
        lines += ["## How it was made", "", "```bash", command, "```", ""]
    lines += ["The full configuration is in `config.yaml` and `tokendistill.json` beside the weights.", ""]
    return "\n".join(lines)


def write_card(folder: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    """(Re)write the card of a tokendistill student from what it recorded, with the evaluations it has had (one
    row per task, split and reading; a later evaluation of the same replaces it). Atomic: a reader never sees
    half a card, and the card and its list of evaluations are the only files this touches."""
    folder = Path(folder)
    record = load_record(folder)
    sidecar = folder / CARD_METRICS
    known: list[dict[str, Any]] = []
    if sidecar.is_file():
        try:
            known = [m for m in json.loads(sidecar.read_text(encoding="utf-8")) if isinstance(m, dict)]
        except (ValueError, TypeError):
            known = []  # a damaged list is rebuilt from the evaluations to come
    if metrics is not None:
        key = (metrics.get("task"), metrics.get("split"), metrics.get("answer"))
        known = [m for m in known if (m.get("task"), m.get("split"), m.get("answer")) != key]
        known.append({k: metrics.get(k) for k in ("task", "split", "examples", "accuracy", "answer")})
        _write_atomic(sidecar, json.dumps(known))
    _write_atomic(folder / MODEL_CARD, card_text(folder, record, known))
    return folder / MODEL_CARD


def _write_atomic(path: Path, text: str) -> None:
    write_file(path, text)


# The command line being run, set by the CLI, so that a card can say how its model was made.
COMMAND: ContextVar[str | None] = ContextVar("tokendistill_command", default=None)


def record_command(arguments: list[str]) -> None:
    COMMAND.set("tokendistill " + " ".join(shlex.quote(argument) for argument in arguments))
