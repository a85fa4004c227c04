"""Typed configurations of the stages: loadable from YAML, overridable from the command line, saved with outputs."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from tokendistill.artefacts import CONFIG, MANIFEST
from tokendistill.options import (
    option,
    to_dict,
)
from tokendistill.student import BASELINE_MODE, TaskMarker


def top_k_problem(value: float) -> str | None:
    if value >= 1 and value != int(value):
        return "a whole number of words (1, 2, ...) or a fraction of the input's words between 0 and 1"
    if value <= 0:
        return "a positive count of words, or a fraction between 0 and 1"
    return None


def device_problem(value: str) -> str | None:
    """Devices this tool runs on (``mps`` and others would silently fall back or fail deep inside torch)."""
    if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return None
    return "auto, cpu, cuda or cuda:N (the devices tokendistill runs on)"


@dataclass(kw_only=True)
class TaskOptions:
    task: str = option(dataclasses.MISSING, "task name", registry="tasks")
    data: str | None = option(None, "local data: a file or a folder (the DSS layout); default: the hub")
    input_column: str | None = option(None, "text task: the input column", shown_default="input")
    label_column: str | None = option(None, "text task: the label column", shown_default="label")
    free_text: bool = option(False, "text task: the labels are free text (default: the observed labels form a "
                                    "closed set, for choice scoring and a chance level)")
    limit: int | None = option(None, "use only the first N examples of the split", minimum=1)
    seed: int = option(0, "random seed for everything the run draws", minimum=0)
    test_fraction: float | None = option(
        None, "carve the test split out of the training data (one file, or a folder without a test file): "
              "this share of rows, chosen by their content, the same in every stage; pass it to every stage",
        above=0, maximum=0.9)
    valid_fraction: float | None = option(
        None, "carve a validation split (--eval-split valid) out of the training data the same way, disjoint from "
              "the test rows; pass it to every stage", above=0, maximum=0.5)
    trust_remote_code: bool = option(False, "run the Python code a model folder ships (its config's auto_map); off, "
                                            "such a folder is refused: code from a model folder runs only when asked")


@dataclass(kw_only=True)
class ExtractConfig(TaskOptions):
    teacher: str = option(dataclasses.MISSING, "teacher model: hub id, local folder or .gguf file")
    output: str = option(dataclasses.MISSING, "rationale folder to write (resumed if it holds this config)")
    split: str = option("train", "split to attribute")
    method: str = option("saliency", "attribution method (random: a control, no teacher knowledge)", registry="methods")
    target: Literal["teacher", "gold", "choice"] = option(
        "teacher", "answer to attribute: the teacher's generation, the gold one, or its best-scored choice"
    )
    choice_scoring: Literal["sum", "mean"] = option("mean", "--target choice: rank candidates by summed or mean log-prob")
    only_correct: bool = option(False, "keep rationales only where the teacher's answer is right (others get none)")
    top_k: float = option(0.25, "words to keep: a count, or a fraction of the input's candidate words when below 1 "
                                "(at least one, at most --top-k-cap)", check=top_k_problem)
    top_k_cap: int | None = option(10, "a fraction --top-k keeps at most this many words (a count is kept as given)",
                                   minimum=1)
    merge: Literal["sum", "max"] = option("sum", "how subword scores combine into a word score")
    drop_punctuation: bool = option(True, "never select punctuation")
    drop_stopwords: bool = option(True, "never select English stop-words (the, was, I, ...); --no-drop-stopwords "
                                        "keeps them")
    batch_size: int = option(16, "examples per forward/backward pass", minimum=1)
    max_input_length: int = option(512, "teacher input tokens; longer inputs are truncated and counted", minimum=1)
    max_new_tokens: int = option(32, "teacher generation length", minimum=1)
    prompt_suffix: str | None = option(None, "text after the input for decoder teachers (default '\\nAnswer:')")
    chat_template: bool = option(False, "wrap the input in the teacher's chat template (instruct models)")
    ig_steps: int = option(20, "integrated gradients: interpolation steps", minimum=1)
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)
    overwrite: bool = option(False, "replace an output folder that holds a different run")
    strict: bool = option(False, "refuse (exit 2, records kept) instead of warning when the teacher is near chance "
                                 "or the majority-label rate, or its answers fell back to the gold one")

    def identity_values(self) -> dict[str, Any]:
        """The settings as the rationale folder's identity records them: a count keeps no cap (the cap applies to
        fractions only), so that a count's folder is the same run whatever the cap's default."""
        return {**to_dict(self), "top_k_cap": self.top_k_cap if self.top_k < 1 else None}


# What earlier versions did where a default has since changed (0.1: stop-words were candidates, 10 words, no cap).
# A rationale folder's identity leaves settings at these values out of its hash, as it leaves defaults out, so that
# folders made before the change keep their hash; a manifest that predates a setting is read as its earlier value.
EXTRACT_EARLIER_DEFAULTS: dict[str, Any] = {"top_k": 10.0, "drop_stopwords": False, "top_k_cap": None}


@dataclass(kw_only=True)
class TrainConfig(TaskOptions):
    student: str = option(dataclasses.MISSING, "student model: hub id or local folder")
    output: str = option(dataclasses.MISSING, "folder for the trained student")
    init: Literal["pretrained", "random"] = option("pretrained", "start from the weights, or from the config only")
    base_model_id: str | None = option(None, "the hub id of the weights a local --student folder holds, for the "
                                             "card's base_model (a local path is never published)")
    mode: str = option(BASELINE_MODE, "training mode", registry="modes")
    rationales: str | None = option(None, "rationale folder from `extract` (multitask modes)")
    top_k: float | None = option(None, "re-select the top k words from the rationale scores (default: as extracted)", check=top_k_problem)
    llm_rationales: str | None = option(None, "dss mode: folder with the DSS data and its llm/ rationales (default: --data)")
    split: str = option("train", "training split")
    alpha: float = option(0.5, "multitask: weight of the label loss; the rationale loss gets 1 - alpha", minimum=0, maximum=1)
    learning_rate: float = option(5e-5, "AdamW learning rate", above=0)
    weight_decay: float = option(0.01, "AdamW weight decay (torch's default, which every earlier version used)",
                                 minimum=0)
    batch_size: int = option(64, "examples per optimizer step (over all processes and accumulation steps)", minimum=1)
    gradient_accumulation: int = option(1, "split each step's batch into this many forward/backward passes", minimum=1)
    task_marker: Literal[TaskMarker.ENCODER.value, TaskMarker.DECODER.value, TaskMarker.SHARED_PROMPT.value] = option(
        TaskMarker.ENCODER.value, "multitask modes: where `predict:` / `explain:` go. encoder: before the input (the paper's and DSS's format); decoder (seq2seq students): at the start of the output, so the encoder reads each input once for both tasks; shared_prompt (decoder-only students): after the input, each example's rows packed into one sequence that reads the input once (the same loss as two rows, about half the tokens). decoder and shared_prompt train a different model from the paper's")
    batch_by_length: bool = option(True, "run each step's rows in forward passes of similar length (the same loss, less padding); off: one pass per accumulation step")
    steps: int = option(1000, "optimizer steps", minimum=1)
    max_input_length: int = option(512, "student input tokens", minimum=1)
    max_target_length: int = option(64, "student target tokens", minimum=1)
    lr_scheduler: Literal["linear", "constant"] = option("linear", "learning-rate schedule (linear decay to 0, as HF)")
    warmup_steps: int = option(0, "steps of linear warm-up before the schedule", minimum=0)
    max_grad_norm: float = option(1.0, "clip the gradients' global norm to this before each step (1.0, as Hugging "
                                       "Face's Trainer and DSS's recipe; 0: no clipping, as in earlier versions)",
                                  minimum=0)
    checkpoint_every: int = option(100, "save a resumable checkpoint every N steps (0: never)", minimum=0)
    eval_every: int = option(0, "score the student on --eval-split every N steps and at the end (0: never)",
                             minimum=0)
    eval_split: str = option("valid", "held-out split for --eval-every (never the training split)")
    eval_limit: int | None = option(200, "rows of --eval-split to score", minimum=1)
    keep_best: bool = option(False, "save the weights of the best --eval-every step instead of the last")
    push_to_hub: str | None = option(None, "after training, upload the student with its card to this hub "
                                           "repository (as `tokendistill push`)")
    report_to: str | None = option(None, "experiment trackers, through accelerate, beside train_log.jsonl: "
                                         "comma-separated names (tensorboard, wandb, mlflow, trackio, ...) of "
                                         "installed ones")
    lora_rank: int = option(0, "train LoRA adapters of this rank instead of all weights (0: full fine-tuning)", minimum=0)
    lora_alpha: float = option(16, "LoRA scaling numerator (scale = lora_alpha / lora_rank)", above=0)
    lora_targets: str | None = option(None, "LoRA: comma-separated module names (default: peft's for the model)")
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)
    overwrite: bool = option(False, "replace an output folder that holds a different run")
    strict: bool = option(False, "refuse (exit 2) rationales whose teacher was near chance or the majority-label "
                                 "rate, or fell back to the gold answer, instead of warning")

    # A mode's own options are fields of its own subclass of this one (TRL's GKDConfig(SFTConfig) pattern), declared
    # in the mode's module: kd's teacher and KL weights are not options of every mode.

    def other_models(self) -> dict[str, str]:
        """The models this run loads beside the student, by role (their fingerprints join the run's identity, and
        no output may overlap them); a mode's subclass names its own (kd's teacher)."""
        return {}


@dataclass(kw_only=True)
class EvaluateConfig(TaskOptions):
    # The task and its data default to what the student was trained on (no repeating four flags).
    task: str | None = option(None, "task name (default: the student's)", registry="tasks")
    model: str = option(dataclasses.MISSING, "a student folder written by `train`")
    output: str = option(dataclasses.MISSING, "folder for predictions.jsonl and metrics.json")
    split: str = option("test", "split to evaluate")
    batch_size: int = option(64, "examples per generation batch", minimum=1)
    max_input_length: int = option(512, "input tokens", minimum=1)
    max_new_tokens: int | None = option(None, "generation length (default: a closed-set task's longest label in "
                                              "tokens + 1, else 64)", minimum=1)
    answer: Literal["generation", "choice_sum", "choice_mean"] = option(
        "generation",
        "how the student's answer is read: its greedy generation (DSS's metric), or, on a task with a closed "
        "answer set, the candidate it gives the highest summed / mean log-probability (both are recorded)",
    )
    device: str = option("auto", "auto, cpu or cuda", check=device_problem)
    overwrite: bool = option(False, "replace an output folder that holds a different evaluation")
    update_card: bool = option(False, "add the accuracy to the student's model card (the one write into the "
                                      "student's folder, under its lock; without it the student's folder is only read)")


def write_config(config: Any, folder: Path, name: str = CONFIG) -> None:
    from tokendistill.folders import write_file

    write_file(folder / name, yaml.safe_dump(to_dict(config), sort_keys=False))


def config_hash(values: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def differing_keys(held: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The settings in which a run on disk differs from the one asked for.

    A setting missing on one side counts as its default, so that an option added in a later version (at its
    default) does not orphan runs written before it existed; settings that no longer exist, and recorded
    facts without a default (fingerprints) that an older run did not record, are ignored.
    """
    if not isinstance(held, dict):
        return ["(its recorded settings are damaged)"]
    keys = {key for key in current if key in held or key in defaults} | (set(held) & set(defaults))
    return sorted(
        key for key in keys if json_normal(held.get(key, defaults.get(key))) != json_normal(current.get(key, defaults.get(key)))
    )


def json_normal(value: Any) -> Any:
    """JSON round trips turn tuples into lists; compare them as equal."""
    return json.loads(json.dumps(value, default=str))


def fingerprint(location: str | None) -> str | None:
    """What a model or rationale folder holds, so that a run resumes only on the same inputs.

    Our own outputs carry their identity (a student's ``tokendistill.json``, a rationale folder's manifest);
    other local folders are described by their files' names, sizes and modification times; hub ids by
    themselves.
    """
    import hashlib

    if not location:
        return None
    path = Path(location).expanduser()
    if not path.exists():
        return location
    if path.is_dir():
        from tokendistill.folders import read_json
        from tokendistill.student import find_record

        if record := find_record(path):
            return f"student:{record.identity}"
        manifest = path / MANIFEST
        if manifest.is_file():
            held = read_json(manifest, "run its `tokendistill extract` again with --overwrite")
            return f"rationales:{held.get('config_hash')}:{(held.get('summary') or {}).get('examples')}"
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = [path]
    description = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return "files:" + hashlib.sha256(json.dumps(description).encode()).hexdigest()[:16]
