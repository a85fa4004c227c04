"""The rationale store: one JSON line per example plus a manifest, resumable and never overwritten silently.

Records are appended and fsynced batch by batch. On opening, a torn last line (a run killed mid-write) is
cut off and its examples are redone; a folder made by a different configuration is refused unless the
caller asks to overwrite it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokendistill.artefacts import MANIFEST, RATIONALE_FOLDER, RECORDS
from tokendistill.config import (
    EXTRACT_EARLIER_DEFAULTS,
    ExtractConfig,
    config_hash,
    differing_keys,
    json_normal,
)
from tokendistill.errors import UserError
from tokendistill.folders import Found, Holds, append_lines, clear, open_output, read_json, write_file
from tokendistill.selection import candidate_flags, select_top_k

log = logging.getLogger(__name__)



def library_versions() -> dict[str, str]:
    import importlib.metadata

    versions = {"python": platform.python_version()}
    for package in ("tokendistill", "torch", "transformers", "datasets", "accelerate", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_json_atomic(path: Path, value: Any) -> None:
    """A JSON file, whole or not at all (folders.write_file)."""
    write_file(path, json.dumps(value, indent=2, sort_keys=True, default=str))


def write_lines_atomic(path: Path, lines: Iterable[str]) -> None:
    """Text lines, whole or not at all (folders.write_file)."""
    write_file(path, "".join(lines))


def read_valid_ids(path: Path) -> tuple[set[str], int]:
    """Ids of the complete records and the byte length they occupy; anything after the first bad line is
    discarded (a reader's view: `RationaleStore.open` repairs a damaged file instead)."""
    ids: set[str] = set()
    valid_bytes = 0
    with path.open("rb") as handle:
        for line in handle:
            if _record_id(line) is None:
                break
            ids.add(_record_id(line))  # type: ignore[arg-type]
            valid_bytes += len(line)
    return ids, valid_bytes


def _record_id(line: bytes) -> str | None:
    """The id of a complete record line, or None for a torn or damaged one."""
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    identifier = record.get("id") if isinstance(record, dict) else None
    return identifier if isinstance(identifier, str) else None


def repair_records(path: Path) -> tuple[set[str], int]:
    """Keep every complete, distinct record of a records file; returns their ids and how many lines were
    dropped other than a torn last line (which an interrupted run leaves, and which is simply redone).

    A damaged line in the middle (a disk error, a hand edit, two writers of an older version) loses only
    itself: its example is recomputed, and the caller reports the count.
    """
    ids: set[str] = set()
    kept: list[bytes] = []
    dropped = 0
    with path.open("rb") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines):
        identifier = _record_id(line)
        if identifier is None or identifier in ids:
            torn_tail = number == len(lines) - 1 and not line.endswith(b"\n")
            dropped += not torn_tail
            continue
        ids.add(identifier)
        kept.append(line)
    if len(kept) < len(lines):
        write_file(path, b"".join(kept))
    return ids, dropped


def identity_hash(identity: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The hash of a rationale folder's settings, those at their default left out."""
    return config_hash({key: value for key, value in identity.items()
                        if key not in defaults or json_normal(value) != json_normal(defaults[key])})


@dataclass
class RationaleStore:
    """Only the ids of finished records stay in memory; the records themselves are read back lazily."""

    folder: Path
    manifest: dict[str, Any]
    done: set[str]

    @classmethod
    def open(
        cls,
        folder: str | Path,
        identity: dict[str, Any],
        overwrite: bool = False,
        defaults: dict[str, Any] | None = None,
        before_clear: Callable[[], Any] | None = None,
    ) -> RationaleStore:
        """Open ``folder`` for writing the run described by ``identity`` (the settings that change results);
        ``before_clear``: run before --overwrite clears the folder (the stage loads its models there)."""
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        # Settings at their default are left out of the hash (the fingerprint students record of these
        # rationales), so that an option added later at its default keeps every grid's students valid.
        known = defaults or {}
        wanted = identity_hash(identity, known)
        fix = "pass --overwrite to start over, or choose another --output"
        held: dict[str, Any] | None = None

        def inspect(folder: Path) -> Found:
            nonlocal held
            if not manifest_path.exists():
                return Found(Holds.FOREIGN)
            held = checked_manifest(manifest_path, fix)
            changed = differing_keys(held.get("identity", {}), identity, known)
            return Found(Holds.OTHER, tuple(changed)) if changed else Found(
                Holds.FINISHED if held.get("complete") else Holds.PARTIAL)

        if open_output(folder, RATIONALE_FOLDER, inspect, overwrite).clear:
            if before_clear is not None:
                before_clear()  # --overwrite: what the new records need (the teacher) loads before the old go
            clear(folder)
            held = None
        folder.mkdir(parents=True, exist_ok=True)
        done: set[str] = set()
        records_path = folder / RECORDS
        if records_path.exists():
            done, dropped = repair_records(records_path)
            if dropped:
                log.warning("%s: %d damaged or repeated record line(s) dropped; their examples are recomputed",
                            records_path, dropped)
        manifest = {
            "config_hash": wanted,
            "identity": identity,
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "complete": False,
        }
        if held is not None:
            manifest = {**held, "complete": False}
        write_json_atomic(manifest_path, manifest)
        return cls(folder, manifest, done)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """One batch as one ``write`` to a file opened for appending: no other writer can interleave with
        it mid-line, and a crash leaves at most a torn last line, which `open` redoes."""
        batch = list(records)
        append_lines(self.folder / RECORDS, [json.dumps(record, ensure_ascii=False) for record in batch],
                     crash="store.mid_write")
        self.done.update(record["id"] for record in batch)

    def record_threads(self, threads: int) -> None:
        """Each session's CPU thread count, kept as a history: a resumed extraction at another count is not
        bit-identical to an uninterrupted one (docs/reliability.md), and says so."""
        history = list(self.manifest.get("thread_history") or [])
        if history and history[-1] != threads and self.done:
            log.warning("resuming with %d threads an extraction begun with %s: on CPU its records are then not "
                        "bit-identical to an uninterrupted run (docs/reliability.md)", threads, history[-1])
        if not history or history[-1] != threads:
            self.manifest["thread_history"] = [*history, threads]
            write_json_atomic(self.folder / MANIFEST, self.manifest)

    def finish(self, summary: dict[str, Any]) -> None:
        self.manifest.update(summary=summary, complete=True)
        write_json_atomic(self.folder / MANIFEST, self.manifest)


def extraction_summary(folder: str | Path) -> str:
    """What an extraction ends with: where its words are, what the teacher got right (and on how many of the rows
    it had been trained on), the fallbacks, and the next command."""
    summary = read_manifest(folder).get("summary") or {}
    lines = [f"rationales: {folder}"]
    examples, accuracy = summary.get("examples"), summary.get("teacher_accuracy")
    if isinstance(examples, int) and isinstance(accuracy, (int, float)):
        lines.append(f"  the teacher was right on {round(accuracy * examples)} of {examples} examples "
                     f"({100 * accuracy:.1f}%)")
    elif isinstance(examples, int):
        lines.append(f"  {examples} examples (the teacher's own answers were not asked: --target gold)")
    if summary.get("teacher_trained_on"):
        lines.append(f"  the teacher was fine-tuned on {summary['teacher_trained_on']} of them: its words there show "
                     "what it learned, not how it generalises")
    if summary.get("gold_fallbacks"):
        lines.append(f"  {summary['gold_fallbacks']} answered nothing: the gold answer's words were attributed there")
    lines.append(f"  next: tokendistill train --mode multitask --rationales {folder} --student STUDENT --output FOLDER")
    return "\n".join(lines)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise UserError(f"{folder} is not a rationale folder (no {MANIFEST}); run `tokendistill extract` first")
    return checked_manifest(path, "run the `tokendistill extract` that made it again with --overwrite")


# A manifest's fields and the types they must have: read as possibly damaged, checked before any is used.
_MANIFEST_FIELDS = {"identity": dict, "complete": bool, "summary": dict, "versions": dict, "thread_history": list}


def checked_manifest(path: Path, fix: str) -> dict[str, Any]:
    """A manifest of ours, each field of the type it must have, or one line naming the damage and what to do."""
    manifest = read_json(path, fix)
    for name, kind in _MANIFEST_FIELDS.items():
        if name in manifest and not isinstance(manifest[name], kind):
            raise UserError(f"{path} is damaged (its {name!r} is not a {kind.__name__}); {fix}")
    if "identity" not in manifest:
        raise UserError(f"{path} is damaged (it records no identity); {fix}")
    return manifest


def extraction_settings(folder: str | Path, manifest: dict[str, Any] | None = None) -> ExtractConfig:
    """The settings a rationale folder was made with, as the stage's own config: what its identity names, the
    rest (limit, batch size) from the finished run's config, and each setting the manifest leaves out (an
    identity omits settings at their default) at ExtractConfig's default, defined there once."""
    manifest = read_manifest(folder) if manifest is None else manifest
    known = {item.name for item in dataclasses.fields(ExtractConfig)}
    # A setting newer than the folder is read as what the version that wrote it did (its earlier default).
    recorded = {**EXTRACT_EARLIER_DEFAULTS, **((manifest.get("summary") or {}).get("config") or {}),
                **(manifest.get("identity") or {})}
    values = {key: value for key, value in recorded.items() if key in known}
    if not isinstance(values.get("task"), str):
        raise UserError(f"{Path(folder) / MANIFEST} names no task; run the `tokendistill extract` that made it "
                        "again with --overwrite")
    # A folder written by hand or by another tool may not name its teacher: "" (unknown) then.
    teacher = values.get("teacher") if isinstance(values.get("teacher"), str) else ""
    return ExtractConfig(**{**values, "teacher": teacher, "output": str(folder)})


def iter_rationales(folder: str | Path) -> Iterator[dict[str, Any]]:
    """The complete records of a rationale folder, read lazily."""
    read_manifest(folder)
    path = Path(folder) / RECORDS
    if not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                return


def load_rationales(folder: str | Path) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in iter_rationales(folder)}


def reselect(record: dict[str, Any], top_k: float, drop_punctuation: bool = True, drop_stopwords: bool = False,
             cap: int | None = None) -> dict[str, Any]:
    """The record with its rationale re-chosen as the top k of its stored word scores (the candidates and a
    fraction's cap as the folder was extracted with).

    One extraction at the largest k serves every smaller k: the scores do not depend on k.
    """
    words = record["words"]
    scores = np.array([np.nan if s is None else s for s in record["word_scores"]], dtype=float)
    candidates = candidate_flags(words, record["word_roles"], drop_punctuation, drop_stopwords)
    if record.get("rationale_withheld"):
        return record  # --only-correct: the teacher was wrong here, so it gives no words
    chosen = select_top_k(scores, candidates, top_k, cap)
    return {**record, "rationale": [words[i] for i in chosen], "rationale_positions": chosen.tolist()}


def teacher_problems(accuracy: float | None, chance: float | None, majority: float | None, fallbacks: int,
                     examples: int) -> list[str]:
    """What makes a rationale folder's words carry little of the teacher's knowledge, in words a user acts on.

    The floor is the better of chance (a closed label set) and the majority-label rate of these rows (always
    answering the commonest label), so a free-text or user task without a known chance level is judged too.
    """
    problems = []
    if fallbacks:
        problems.append(f"{fallbacks} of {examples} examples: the teacher answered nothing, so the gold answer's "
                        "words were attributed instead (counted in the manifest as gold_fallbacks)")
    floor = max(value for value in (chance, majority, 0.0) if value is not None)
    if accuracy is not None and accuracy < floor + 0.1:
        baseline = "the majority-label rate" if majority is not None and majority >= (chance or 0) else "chance"
        problems.append(f"the teacher is right on {100 * accuracy:.1f}% of these examples, near {baseline} "
                        f"({100 * floor:.1f}%): its words carry little knowledge; fine-tune it on the task first "
                        "(tokendistill train --mode standard --student TEACHER), or attribute --target gold")
    return problems


def summary_problems(folder: str | Path) -> list[str]:
    """``teacher_problems`` of a finished rationale folder, from its manifest's summary."""
    summary = (read_manifest(folder).get("summary") or {}) if (Path(folder) / MANIFEST).is_file() else {}
    if not summary:
        return []
    return teacher_problems(summary.get("teacher_accuracy"), summary.get("chance_accuracy"),
                            summary.get("majority_accuracy"), summary.get("gold_fallbacks") or 0,
                            summary.get("examples") or 0)
