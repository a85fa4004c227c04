"""`tokendistill push`: a student to the Hugging Face hub as a model, a rationale folder as a dataset, each with
its card, through `huggingface_hub`. Only what a user of the repository needs travels: no checkpoint, lock or
bookkeeping file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokendistill.artefacts import (
    CARD_METRICS,
    CHECKPOINT,
    CHECKPOINT_INFO,
    LOCK,
    MANIFEST,
    MODEL_CARD,
    RECORDS,
    STUDENT_INFO,
    TRAIN_INPUTS,
    TRAIN_INPUTS_BEFORE,
)
from tokendistill.errors import UserError
from tokendistill.folders import read_json
from tokendistill.options import option
from tokendistill.rationales import extraction_settings
from tokendistill.student import has_record

# Mid-run state and bookkeeping: never part of a published model or dataset.
LEFT_BEHIND = frozenset({CHECKPOINT, CHECKPOINT_INFO, LOCK, CARD_METRICS, TRAIN_INPUTS, TRAIN_INPUTS_BEFORE})


@dataclass(kw_only=True)
class PushConfig:
    folder: str = option(dataclasses.MISSING, "a student folder (train) or a rationale folder (extract)",
                         positional=True)
    repo_id: str = option(dataclasses.MISSING, "hub repository, e.g. you/my-student")
    private: bool = option(False, "create the repository as private")
    dry_run: bool = option(False, "list what would be uploaded, and upload nothing")


def dataset_card(folder: Path, manifest: dict[str, Any]) -> str:
    extracted, summary = extraction_settings(folder, manifest), manifest.get("summary") or {}
    metadata = {"tags": ["tokendistill", "rationales", "distillation"], "configs": [
        {"config_name": "default", "data_files": [{"split": extracted.split, "path": RECORDS}]}]}
    facts = [("task", extracted.task), ("split", extracted.split), ("teacher", extracted.teacher),
             ("attribution method", extracted.method), ("answer attributed", extracted.target),
             ("words per example (k)", extracted.top_k), ("examples", summary.get("examples")),
             ("teacher accuracy on them", None if summary.get("teacher_accuracy") is None
              else f"{100 * summary['teacher_accuracy']:.1f}%")]
    return "\n".join([
        "---", yaml.safe_dump(metadata, sort_keys=False).strip(), "---", "", f"# {folder.name}", "",
        "Rationale words made by [tokendistill](https://pypi.org/project/tokendistill/): for every example, the "
        "input words its teacher's answer depends on most (by attribution), in input order, with every word's "
        "score. One JSON record per line in `records.jsonl` (`rationale`, `words`, `word_scores`, "
        "`teacher_answer`, `teacher_correct`, ...).", "",
        "| | |", "|---|---|", *[f"| {name} | {value} |" for name, value in facts if value is not None], "",
        "How it was made: `manifest.json` (identity, versions, summary).", ""])


def upload_plan(folder: str | Path) -> tuple[str, dict[str, Path | bytes]]:
    """The repository type and the files to upload (path in the repository -> a local file or the bytes of a
    generated card)."""
    root = Path(folder)
    if has_record(root):
        if not (root / MODEL_CARD).is_file():
            from tokendistill.card import write_card

            write_card(root)
        kind = "model"
        files: dict[str, Path | bytes] = {}
    elif (root / MANIFEST).is_file() and (root / RECORDS).is_file():
        manifest = read_json(root / MANIFEST, "run its extract again")
        if not manifest.get("complete"):
            raise UserError(f"{root} is an unfinished extraction; run the same extract again to finish it first")
        kind = "dataset"
        files = {MODEL_CARD: dataset_card(root, manifest).encode("utf-8")}
    else:
        raise UserError(f"{root} is neither a student folder ({STUDENT_INFO}) nor a rationale folder ({MANIFEST}); "
                        "pass the --output of train or extract")
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and path.name not in LEFT_BEHIND and not relative.startswith(("parts/", ".")):
            files.setdefault(relative, path)
    return kind, files


def push(config: PushConfig) -> list[str]:
    """Upload the folder (or, with ``dry_run``, only say what would go); returns the paths in the repository."""
    kind, files = upload_plan(config.folder)
    names = sorted(files)
    if config.dry_run:
        return names
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    try:
        api.create_repo(config.repo_id, private=config.private, repo_type=kind, exist_ok=True)
        api.create_commit(config.repo_id, [CommitOperationAdd(name, files[name]) for name in names],
                          commit_message=f"tokendistill: {Path(config.folder).name}", repo_type=kind)
    except Exception as error:  # the hub client raises many types; the first line says what failed
        reason = next(iter(str(error).splitlines()), "") or type(error).__name__
        raise UserError(f"cannot push to {config.repo_id} on the hub ({reason}); check the network and "
                        "`huggingface-cli login`") from None
    return names


def push_command(config: PushConfig) -> str:
    names = push(config)
    verb = "would upload" if config.dry_run else "uploaded"
    return json.dumps({"repo_id": config.repo_id, verb: names}, indent=2)
