"""Raw records from the hub or local files, formatted into a task's examples."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tokendistill.errors import UserError
from tokendistill.tasks.base import Example, Task, carved_part

log = logging.getLogger(__name__)

_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def check_utf8(path: Path, chunk_size: int = 1 << 20) -> None:
    """Fail early, with the line number, on bytes that are not UTF-8: the parsers fail late and vaguely."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(chunk_size):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    bad = offset + error.start
                    line += chunk[: error.start].count(b"\n")
                    raise UserError(
                        f"{path} is not valid UTF-8 (byte {bad}, line {line}: {error.reason}); re-encode it, "
                        "e.g. iconv -f latin1 -t utf-8"
                    ) from None
                offset += len(chunk)
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} ends in the middle of a UTF-8 character; re-encode it") from None


def _check_csv_header(path: Path) -> None:
    """A CSV header that names a column twice is refused: the parser would rename the second ("label.1") and a
    task would read the first without a word."""
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise UserError(f"{path}: the header names column(s) {', '.join(map(repr, twice))} more than once; give "
                        "every column its own name")


def _read_file(path: Path) -> Iterable[Mapping[str, Any]]:
    """The file's records: a memory-mapped dataset (which knows its length, for progress bars), or a JSON array's
    records streamed."""
    suffix = _checked_file(path)
    if suffix == ".json" and _is_json_array(path):
        return _json_array(path)
    return _parsed_by_datasets(path, suffix)


def _checked_file(path: Path) -> str:
    """The file's suffix, once the file is known readable: a format we read, UTF-8 text, not empty, a CSV header
    without a column twice."""
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise UserError(f"cannot read {path}: use a .jsonl, .json, .csv or .parquet file")
    if suffix != ".parquet":
        check_utf8(path)
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty; pass a file with records")
    if suffix == ".csv":
        _check_csv_header(path)
    return suffix


def _json_array(path: Path) -> Iterator[Mapping[str, Any]]:
    """DSS's SVAMP.json and similar releases are one JSON array, which datasets' json loader rejects."""
    with path.open(encoding="utf-8") as handle:
        try:
            records = json.load(handle)
        except json.JSONDecodeError as error:
            raise UserError(f"cannot parse {path}: {error}; check that it is valid JSON") from None
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UserError(f"{path}: item {index} of the JSON array is not an object of column: value")
        yield record


def _parsed_by_datasets(path: Path, suffix: str) -> Any:
    import datasets

    # A local file is read locally: datasets would otherwise report the load to a download counter on the
    # network (a request the user did not ask for, and up to 3 s of waiting per load offline).
    datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        with _quiet_datasets():
            dataset = datasets.load_dataset(_FORMATS[suffix], data_files=str(path), split="train")
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not valid UTF-8 ({error.reason} at byte {error.start}); re-encode it") from None
    except Exception as error:  # datasets wraps the parser's error (its cause) in many types; the parser's says what
        while error.__cause__ is not None:
            error = error.__cause__  # type: ignore[assignment]
        reason = next(iter(str(error).splitlines()), "") or type(error).__name__
        raise UserError(f"cannot parse {path}: {reason}; check that it is valid {suffix[1:].upper()}") from None
    return dataset


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """datasets' own log lines (a parse error logged with its traceback) and progress bars, silenced while it
    reads a local file: a bad file gets our one-line error, a good one no bar for a split it builds in a blink."""
    import datasets

    logger = logging.getLogger("datasets")
    level, bars = logger.level, datasets.utils.are_progress_bars_disabled()
    logger.setLevel(logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        if not bars:
            datasets.enable_progress_bars()


def _is_json_array(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.read(64).lstrip().startswith("[")
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not valid UTF-8 ({error.reason}); re-encode it") from None


def _find_split_file(folder: Path, task: Task, split: str) -> Path | None:
    """The file for ``split`` in ``folder``: DSS layout (``cqa/cqa_train.json``) or ``train.jsonl`` and the like."""
    stems = [f"{task.name}_{split}", split]
    if split == "valid":
        stems += [f"{task.name}_validation", "validation", "dev"]
    for base in (folder / task.name, folder):
        for stem in stems:
            for suffix in _FORMATS:
                candidate = base / f"{stem}{suffix}"
                if candidate.is_file():
                    return candidate
    return None


def raw_records(task: Task, split: str, data: str | None = None, seed: int = 0) -> Iterable[Mapping[str, Any]]:
    """Records of ``split``: generated (synthetic tasks), from ``data`` (a file or folder), or from the hub."""
    if split not in task.splits:
        raise UserError(f"task {task.name!r} has no split {split!r}; choose one of: {', '.join(task.splits)}")
    if data is None:
        generated = getattr(task, "generated", None)
        if generated is not None:
            return generated(split, seed)
        return _hub_records(task, split)
    path = Path(data).expanduser()
    if path.is_file():
        return _read_file(path)
    if path.is_dir():
        found = _find_split_file(path, task, split)
        if found is not None:
            return _read_file(found)
        if (records := task.unsplit_records(path, split)) is not None:
            return records
        raise UserError(
            f"no {split!r} file for task {task.name!r} in {path}: expected {task.name}/{task.name}_{split}.json "
            f"(the DSS layout) or {split}.jsonl/.csv/.parquet"
        )
    if "/" in data and not data.startswith((".", "/", "~")):
        return _hub_records(task, split, dataset_id=data)
    raise UserError(f"data path {data} does not exist; pass an existing file or folder with --data")


def _hub_records(task: Task, split: str, dataset_id: str | None = None) -> Iterable[Mapping[str, Any]]:
    if dataset_id is None and task.hub is None:
        raise UserError(f"task {task.name!r} has no hub source; pass local files with --data")
    hub_id, config, split_map = task.hub if dataset_id is None else (dataset_id, None, {})  # type: ignore[misc]
    import datasets

    try:
        return datasets.load_dataset(hub_id, config, split=split_map.get(split, split), streaming=True)
    except Exception as error:
        raise UserError(
            f"cannot load dataset {hub_id!r} from the Hugging Face hub ({type(error).__name__}); "
            "offline, pass local files with --data PATH"
        ) from None


def normalized(example: Example) -> Example:
    """The example in Unicode NFC: a decomposed accent (NFD, as some editors and macOS file names write it)
    and its composed twin are one character to every later stage (teacher, words, student)."""
    segments = tuple(dataclasses.replace(s, text=unicodedata.normalize("NFC", s.text)) for s in example.segments)
    return dataclasses.replace(
        example, segments=segments, target=unicodedata.normalize("NFC", example.target),
        choices=tuple(unicodedata.normalize("NFC", choice) for choice in example.choices),
    )


_SLICE = re.compile(r"^(?P<split>[^\[\]]+)\[(?P<start>\d*):(?P<stop>\d*)\]$")


def parse_split(split: str) -> tuple[str, int, int | None]:
    """``name`` or ``name[start:stop]`` (Hugging Face datasets' slice syntax, over the split's examples in file
    order): a validation part carved from rows that no stage trains on, e.g. ``valid[4000:4500]``."""
    if "[" not in split:
        return split, 0, None
    match = _SLICE.match(split)
    if not match:
        raise UserError(f"split {split!r}: write a slice as name[start:stop], e.g. valid[4000:4500]")
    start, stop = int(match["start"] or 0), int(match["stop"]) if match["stop"] else None
    if stop is not None and stop <= start:
        raise UserError(f"split {split!r}: the slice is empty; its end must come after its start")
    return match["split"], start, stop


def _formatted(task: Task, split: str, source: str, data: str | None, seed: int, limit: int | None,
               window: tuple[int, int | None], carve: tuple[float | None, float | None]
               ) -> Iterator[tuple[int, Example]]:
    """(file row, formatted example) of the split's slice, or, carved by --test-fraction / --valid-fraction, of its
    part's slice: the carved split's rows where ``source`` is not the split itself (read from the training data),
    else the training part's (never a carved row)."""
    start, stop = window
    test_fraction, valid_fraction = carve
    wanted = split if source != split else "train"
    if test_fraction is None and valid_fraction is None:
        end = stop if limit is None else min(start + limit, stop if stop is not None else start + limit)
        # The row number stays the file's, so that files aligned by row (DSS's LLM rationales) still join.
        rows = itertools.islice(raw_records(task, split, data, seed), start, end)
        yield from ((index, normalized(task.format(record, index, split))) for index, record in enumerate(rows, start))
        return
    kept, position = 0, 0  # rows yielded; rows of the carved part seen (the slice counts these)
    for index, record in enumerate(raw_records(task, source, data, seed)):
        if (limit is not None and kept >= limit) or (stop is not None and position >= stop):
            return
        example = normalized(task.format(record, index, split))
        if carved_part(example.input, test_fraction, valid_fraction) != wanted:
            continue
        position += 1
        if position > start:
            kept += 1
            yield index, example


def iter_examples(
    task: Task, split: str, data: str | None = None, limit: int | None = None, seed: int = 0,
    test_fraction: float | None = None, valid_fraction: float | None = None,
) -> Iterator[Example]:
    """The first ``limit`` formatted examples of ``split``, streamed: memory does not grow with the split.

    ``test_fraction``: the test split is carved out of the training data (a single file, or a folder without
    a test file): a row is a test row by its content (``held_out``), and every other split leaves those rows
    out, so that no stage can report training rows as test rows. A slice (``train[200:260]``) then counts the
    rows of its part: with ``--limit 200`` in training, those 60 rows are held out from it (``--eval-split``).
    ``valid_fraction``: likewise a validation split, the range after the test one (disjoint from both).
    """
    split, start, stop = parse_split(split)
    carved = (split == "test" and test_fraction is not None) or (split == "valid" and valid_fraction is not None)
    source = "train" if carved else split
    if getattr(task, "observes_labels", False):
        task.observe(raw_records(task, source, data, seed))  # type: ignore[attr-defined]
    seen: set[str] = set()
    repeats: dict[str, int] = {}
    for index, example in _formatted(task, split, source, data, seed, limit, (start, stop),
                                     (test_fraction, valid_fraction)):
        if example.id in seen and example.meta.get("content_id"):
            # The same input twice (common in users' files): numbered in file order, which pairs a repeated
            # input with a record of the same input whatever the order.
            repeats[example.id] = repeats.get(example.id, 1) + 1
            example = dataclasses.replace(example, id=f"{example.id}-{repeats[example.id]}")
        if example.id in seen:
            raise UserError(f"id {example.id!r} appears twice in split {split!r}; ids must be unique")
        seen.add(example.id)
        # The row number travels with the example: files aligned by row (DSS's LLM rationales) join on it.
        yield dataclasses.replace(example, meta={**example.meta, "row": index})
    if not seen:
        raise UserError(f"split {split!r} of task {task.name!r} has no records")


def split_size(task: Task, split: str, data: str | None = None, limit: int | None = None, seed: int = 0,
               test_fraction: float | None = None, valid_fraction: float | None = None) -> int | None:
    """How many examples ``iter_examples`` gives, where that is known without reading them (a local file's row
    count, a slice, a limit); None where only reading would tell (a streamed hub split, rows carved by content)."""
    name, start, stop = parse_split(split)
    if test_fraction is not None or valid_fraction is not None or (data is None and not hasattr(task, "generated")):
        return None  # carved by content, or streamed from the hub: only reading would tell (no extra hub request)
    records = raw_records(task, name, data, seed)
    known = len(records) if hasattr(records, "__len__") else None  # type: ignore[arg-type]
    if known is not None:
        known = max(0, min(stop if stop is not None else known, known) - start)
    elif stop is not None:
        known = stop - start
    if limit is not None:
        return limit if known is None else min(limit, known)
    return known


def load_examples(
    task: Task, split: str, data: str | None = None, limit: int | None = None, seed: int = 0,
    test_fraction: float | None = None, valid_fraction: float | None = None,
) -> list[Example]:
    """The first ``limit`` formatted examples of ``split`` (all of them when ``limit`` is None)."""
    return list(iter_examples(task, split, data, limit, seed, test_fraction, valid_fraction))


def in_memory_rows(data: Any) -> list[dict[str, Any]] | None:
    """The rows of in-memory data (a list of dicts, a `datasets.Dataset`), or None for a path or hub id."""
    if data is None or isinstance(data, (str, Path)):
        return None
    try:
        rows = [dict(row) for row in data]
    except (TypeError, ValueError):
        raise UserError(f"data should be a path, a hub id, a list of dicts or a datasets.Dataset, got "
                        f"{type(data).__name__}") from None
    if not rows:
        raise UserError("the in-memory data holds no rows")
    return rows


def materialized(config: Any) -> Any:
    """``config`` with in-memory data (Python API) written once to a file named by its content, so that every
    stage reads, fingerprints and resumes it as it does a file (and the same rows give the same file)."""
    rows = in_memory_rows(getattr(config, "data", None))
    if rows is None:
        return config
    import hashlib
    import os

    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) + "\n" for row in rows)
    cache = Path(os.environ.get("TOKENDISTILL_CACHE", "~/.cache/tokendistill")).expanduser() / "data"
    path = cache / f"rows-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}.jsonl"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    return dataclasses.replace(config, data=str(path))
