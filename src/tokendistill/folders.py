"""Output folders that other people's work can trust: one run at a time, never inside an input, cleared only
when asked, only once every input has loaded and only of the tool's own files, never written through a link,
damaged files reported in one line.

Every stage that writes a folder (`extract`, `train`, `evaluate`, `teacher-eval`, `run`, `report`) goes through
here: `open_output` is the one rule of what a stage may do with the folder it is given, and `write_file` /
`append_lines` the one way a file is written.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from tokendistill.artefacts import CONFIG, LOCK, OWN_NAMES, FolderKind
from tokendistill.errors import UserError


def _holder(handle: Any) -> str:
    handle.seek(0)
    try:
        held = json.loads(handle.read() or "{}")
    except ValueError:
        held = {}
    if not isinstance(held, dict) or "pid" not in held:
        return "another tokendistill run"
    return f"pid {held['pid']} on {held.get('host', '?')} (since {held.get('started', '?')}: {held.get('command', '')})"


@contextlib.contextmanager
def locked(folder: str | Path, option: str = "--output") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the whole block.

    The lock is an ``flock`` on a file inside the folder, which the kernel releases when its process ends
    however it ends (kill -9 included), so a lock left by a killed run is never stale: the next run simply
    takes it. The file records the holder (pid, host, start, command) for the refusal message, and is never
    deleted: deleting a lock file while another process opens it would let two runs hold two locks.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder} is a file, not a folder; choose a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no locking, but say so
        import logging

        logging.getLogger(__name__).warning("file locks are not available here; do not run two commands on %s", folder)
        yield folder
        return
    handle = _open_lock(folder / LOCK)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{folder} is in use by {_holder(handle)}; wait for that run to finish (or stop it), "
                f"or choose another {option}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "command": " ".join(sys.argv[1:3])[:200]}))
        handle.flush()
        try:
            yield folder
        finally:
            handle.seek(0)
            handle.truncate()  # a finished run leaves an empty lock file: outputs stay byte-identical
    finally:
        handle.close()  # closing releases the flock


def _open_lock(path: Path) -> Any:
    """The lock file, created or opened without following a link (a planted link would have the lock's holder
    record written into whatever it points to) and refused where it is anything but a regular file."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise  # the CLI says what the system said (a read-only disk, no permission) in one line
        raise UserError(f"{path} is a symbolic link; tokendistill never writes through a link: remove it") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserError(f"{path} is not a regular file; remove it (tokendistill keeps its lock there)")
    return os.fdopen(descriptor, "r+", encoding="utf-8")


def is_own(name: str) -> bool:
    """Whether a folder entry is one that tokendistill (or save_pretrained, for it) writes."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in OWN_NAMES)


def clear(folder: str | Path) -> None:
    """Remove the tool's own files from ``folder`` (--overwrite), except the lock its own run holds; anything else
    (a user's file beside them) stays, and is named in a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    kept = []
    for entry in folder.iterdir():
        if entry.name == LOCK:
            continue
        if not is_own(entry.name):
            kept.append(entry.name)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if kept:
        import logging

        logging.getLogger(__name__).warning("%s: kept %d entries tokendistill did not write: %s", folder, len(kept),
                                            ", ".join(sorted(kept)[:5]))


def refuse_links(folder: str | Path, option: str = "--output") -> None:
    """Refuse a folder of ours that holds a symbolic link anywhere: the tool writes no file through a link, and a
    link planted where it writes would have it overwrite (or, under --overwrite, delete) what the link points to."""
    folder = Path(folder)
    if folder.is_symlink() and not folder.exists():
        raise UserError(f"{option} {folder} is a broken or looping link; choose another {option}")
    for root, folders, files in os.walk(folder):
        for name in (*folders, *files):
            path = Path(root) / name
            if path.is_symlink():
                raise UserError(f"{path} is a symbolic link; tokendistill never writes through a link: remove it, "
                                f"or choose another {option}")
            if name in files and not (path.is_file() or name == LOCK):
                raise UserError(f"{path} is not a regular file (a pipe or a device); remove it, or choose another "
                                f"{option}")


def write_file(path: str | Path, data: str | bytes | Callable[[Any], None], crash: str | None = None) -> None:
    """The one way tokendistill writes a whole file: into a new temporary file of the same folder (created
    exclusively, so never through a link), flushed to disk, then renamed over ``path``. A reader sees the old
    file or the new one, never half of one; a link at ``path`` is refused, and what it points to is never touched.
    ``data``: text (UTF-8), bytes, or a function that writes to the binary handle it is given; ``crash``: a
    fault-injection point between the write and the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link; tokendistill never writes through a link: remove it")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} exists and is not a regular file; remove it or choose another output")
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a write a kill interrupted (the folder is ours)
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        if crash:
            from tokendistill.faults import crash_point

            crash_point(crash)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class Holds(Enum):
    """What an output folder holds, as the stage that writes it reads it."""

    NOTHING = "nothing"  # nothing yet, or only what a run writes before its first result (the lock, its config)
    FINISHED = "finished"  # this very run, done: nothing to do
    PARTIAL = "partial"  # this very run, unfinished: resume it
    OTHER = "other"  # a run of another configuration (``Found.changed`` names the settings)
    FOREIGN = "foreign"  # not a folder of this kind


@dataclass(frozen=True)
class Found:
    holds: Holds
    changed: tuple[str, ...] = ()
    # Set by open_output only: what the folder holds is to be replaced (--overwrite). The stage clears it when
    # its inputs have loaded, so that a run that fails on them leaves the folder as it was.
    clear: bool = False


def _only_a_start(folder: Path) -> bool:
    """Whether ``folder`` holds only what a run of ours writes before its first result: the lock, and a config
    whose ``output`` is this folder (a run killed while loading). Anyone else's config.yaml is not ours to replace."""
    entries = {entry.name for entry in folder.iterdir()} - {LOCK}
    if not entries:
        return True
    if entries != {CONFIG}:
        return False
    import yaml

    try:
        held = yaml.safe_load((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    output = held.get("output") if isinstance(held, dict) else None
    return isinstance(output, str) and Path(output).expanduser().resolve() == folder.resolve()


def open_output(folder: str | Path, kind: FolderKind, inspect: Callable[[Path], Found], overwrite: bool,
                option: str = "--output") -> Found:
    """What a stage may do with the output folder it was given, by one rule for every stage.

    ``inspect`` is the stage's own reading of a folder that holds something (its identity and resume rule); it
    raises UserError for a damaged file of ours. The same run finished or unfinished is returned as found (the
    stage skips or resumes it); another run, a folder of another kind or a damaged one is refused in one line
    naming what differs, or, under ``overwrite``, returned with ``clear`` set.
    """
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        refuse_links(folder, option)
    if not folder.is_dir() or _only_a_start(folder):
        return Found(Holds.NOTHING)
    try:
        found = inspect(folder)
    except UserError:
        if overwrite:
            return Found(Holds.OTHER, ("(a damaged file)",), clear=True)
        raise
    if found.holds is Holds.FOREIGN:
        # Not ours: never cleared, with --overwrite or without (a user's project, someone's export).
        raise UserError(f"{folder} exists and is not a {kind.name} (it holds files tokendistill did not write); "
                        f"choose another {option}: a new or empty folder")
    if found.holds is not Holds.OTHER:
        return found
    if overwrite:
        return Found(found.holds, found.changed, clear=True)
    raise UserError(f"{folder} holds {kind.holds} of a different configuration (differs in: "
                    f"{', '.join(found.changed)}); choose another {option} or pass --overwrite")


def resolved(path: str | Path, what: str) -> Path:
    """``path`` made absolute through its links, or one line where its links run in a circle."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as error:  # pathlib raises RuntimeError for a symlink loop
        raise UserError(f"{what} {path} cannot be resolved ({error}); it is a link loop or unreadable: fix or "
                        "remove it") from None


def _local(location: str | None, name: str) -> Path | None:
    if not location:
        return None
    path = resolved(location, f"the {name}")
    return path if path.exists() else None


def refuse_overlap(output: str | Path, inputs: Mapping[str, str | None], option: str = "--output",
                   may_nest: frozenset[str] = frozenset()) -> None:
    """Refuse an output that is, contains or lies inside one of the run's local inputs.

    Writing (or clearing, under --overwrite) such a folder would replace or delete what the run reads: a
    student trained into its own folder, an evaluation written over the student's config. ``may_nest``: the
    inputs a new sub-folder may sit inside, because the stage only ever adds files there (an evaluation in
    ``STUDENT/eval`` leaves the student's own files alone).
    """
    target = resolved(output, option)
    for name, location in inputs.items():
        source = _local(location, name)
        if source is None:
            continue
        if target == source:
            relation = "is"
        elif source in target.parents and name not in may_nest:
            relation = "lies inside"
        elif target in source.parents:
            relation = "contains"
        else:
            continue
        raise UserError(f"{option} {output} {relation} the {name} {location}; writing there would replace or "
                        f"delete it: choose another {option}")


def read_json(path: Path, fix: str) -> dict[str, Any]:
    """A JSON object from a file this tool wrote, or one line saying it is damaged and what to do."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is damaged ({type(error).__name__}: {str(error)[:80]}); {fix}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is damaged (not a JSON object); {fix}")
    return value


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON object of ours, or {} where it is missing or damaged: for readers that summarize many folders (a
    results table, a report) and never stop for one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON objects with a text ``id`` of a JSON-lines file of ours (predictions, records): for readers that
    summarize, a torn or damaged line is left out and counted in a warning, never a traceback."""
    records, damaged = [], 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                damaged += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records.append(record)
            else:
                damaged += 1
    if damaged:
        import logging

        logging.getLogger(__name__).warning("%s: %d damaged line(s) left out", path, damaged)
    return records


def append_lines(path: Path, lines: list[str], crash: str | None = None) -> None:
    """Lines as one ``write`` to a file opened for appending: no other writer can interleave with them mid-line,
    and a crash leaves at most a torn last line, which a reader drops (``crash``: a fault-injection point)."""
    from tokendistill.faults import crash_point

    text = "".join(line + "\n" for line in lines).encode("utf-8")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise UserError(f"{path} is a symbolic link; tokendistill never writes through a link: remove it") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserError(f"{path} is not a regular file; remove it")
    try:
        if crash:
            crash_point(crash, lambda: os.write(descriptor, text[: len(text) // 2]))
        written = os.write(descriptor, text)
        while written < len(text):  # a regular file takes it whole; a short write only on a full disk
            written += os.write(descriptor, text[written:])
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
