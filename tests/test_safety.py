"""Safe with other people's folders: no code runs from a file, no input is destroyed, one run per folder,
damaged state is reported in one line and cleared by --overwrite, a full disk loses nothing."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tokendistill import folders
from tokendistill.artefacts import CHECKPOINT, CHECKPOINT_INFO
from tokendistill.cli import main
from tokendistill.config import TrainConfig
from tokendistill.options import to_dict
from tokendistill.training.checkpoints import input_fingerprints, run_identity


def one_line_error(capsys: pytest.CaptureFixture[str], arguments: list[str], *fragments: str) -> str:
    assert main(arguments) == 2
    err = capsys.readouterr().err
    # A progress bar redraws itself with carriage returns: a terminal shows the error on its own line.
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("tokendistill: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def train_arguments(student: Path, output: Path, *extra: str) -> list[str]:
    return ["train", "--task", "keywords", "--student", str(student), "--output", str(output), "--limit", "8",
            "--steps", "4", "--batch-size", "4", "--device", "cpu", *extra]


def extract_arguments(teacher: Path, output: Path, *extra: str) -> list[str]:
    return ["extract", "--task", "keywords", "--teacher", str(teacher), "--output", str(output), "--limit", "24",
            "--batch-size", "8", "--top-k", "3", "--max-new-tokens", "3", "--device", "cpu", *extra]


class RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint.pt would do under weights_only=False."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def plant_checkpoint(output: Path, arguments: list[str], payload: object) -> None:
    """A checkpoint.pt holding ``payload`` beside a checkpoint.json that matches the run exactly, as an
    attacker who copied a real folder could forge it."""
    from tokendistill.arguments import from_arguments
    from tokendistill.cli import build_parser

    namespace = build_parser().parse_args(arguments)
    del namespace.handler, namespace.config_class
    config = from_arguments(TrainConfig, namespace)
    output.mkdir(parents=True)
    (output / CHECKPOINT_INFO).write_text(json.dumps(
        {"identity": run_identity(config), "config": to_dict(config), "inputs": input_fingerprints(config)}))
    torch.save(payload, output / CHECKPOINT)


def test_a_crafted_checkpoint_runs_no_code(tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "code-ran"
    output = tmp_path / "student"
    arguments = train_arguments(t5_dir, output, "--checkpoint-every", "2")
    plant_checkpoint(output, arguments, {"step": RunsCode(marker), "model": {}, "optimizer": {}, "scheduler": {},
                                         "rng": {}, "history": []})
    one_line_error(capsys, arguments, "checkpoint.pt", "--overwrite")
    assert not marker.exists()
    assert main([*arguments, "--overwrite"]) == 0  # starts over without ever reading it
    assert not marker.exists() and (output / "tokendistill.json").exists()


def test_a_checkpoint_without_its_identity_is_never_read(tmp_path: Path, t5_dir: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "code-ran"
    output = tmp_path / "student"
    output.mkdir()
    torch.save({"step": RunsCode(marker)}, output / CHECKPOINT)  # an older version's format, or a plant
    one_line_error(capsys, train_arguments(t5_dir, output), "older version", "--overwrite")
    assert not marker.exists()


def test_a_killed_run_resumes_from_a_checkpoint_that_loads_safely(tmp_path: Path, t5_dir: Path) -> None:
    output = tmp_path / "student"
    arguments = train_arguments(t5_dir, output, "--checkpoint-every", "2")
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENDISTILL_KILL_AT": "train.after_step:3"}
    result = subprocess.run([sys.executable, "-m", "tokendistill.cli", *arguments], env=environment,
                            capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    state = torch.load(output / CHECKPOINT, weights_only=True)  # raises on any pickled object
    assert state["step"] == 2 and json.loads((output / CHECKPOINT_INFO).read_text())["identity"]
    assert main(arguments) == 0
    assert not (output / CHECKPOINT).exists() and not (output / CHECKPOINT_INFO).exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_training_into_the_student_folder_is_refused(
    overwrite: bool, tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    student = tmp_path / "student"
    shutil.copytree(t5_dir, student)
    before = digest(student)
    extra = ["--overwrite"] if overwrite else []
    one_line_error(capsys, train_arguments(student, student, *extra), "is the student", "another --output")
    one_line_error(capsys, train_arguments(student, student / "inside", *extra), "lies inside the student")
    one_line_error(capsys, train_arguments(student, tmp_path, *extra), "contains the student")
    assert digest(student) == before


def test_rationales_and_data_are_inputs_too(tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture) -> None:
    rationales = tmp_path / "r"
    assert main(extract_arguments(t5_dir, rationales)) == 0
    before = digest(rationales)
    one_line_error(capsys, train_arguments(t5_dir, rationales, "--mode", "multitask", "--rationales",
                                           str(rationales), "--overwrite"), "is the rationales")
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"input": "a b", "label": "x"}\n')
    one_line_error(capsys, ["extract", "--task", "text", "--teacher", str(t5_dir), "--data", str(data),
                            "--output", str(data), "--overwrite"], "is the data")
    assert digest(rationales) == before and (data / "train.jsonl").exists()


def test_evaluate_never_writes_over_the_model(tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture) -> None:
    student = tmp_path / "student"
    assert main(train_arguments(t5_dir, student)) == 0
    before = digest(student)
    one_line_error(capsys, ["evaluate", "--task", "keywords", "--model", str(student), "--output", str(student),
                            "--limit", "4", "--device", "cpu"], "is the model")
    assert digest(student) == before


def test_evaluate_refuses_a_file_as_output_before_it_evaluates(
    tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokendistill import models

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models.AutoConfig, "from_pretrained", no_loading)
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    one_line_error(capsys, ["evaluate", "--task", "keywords", "--model", str(t5_dir), "--output", str(taken),
                            "--device", "cpu"], "is a file")
    assert taken.read_text() == "mine"


HOLD = """
import sys, time
from tokendistill.folders import locked
with locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_on_a_held_folder_is_refused_and_a_dead_holder_frees_it(
    tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(output)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        message = one_line_error(capsys, extract_arguments(t5_dir, output), "in use by", f"pid {holder.pid}")
        assert "wait" in message
        one_line_error(capsys, train_arguments(t5_dir, output, "--overwrite"), "in use by")
    finally:
        holder.kill()  # as kill -9 would: the lock file stays, but its lock dies with the process
        holder.wait()
    assert (output / folders.LOCK).exists()
    assert main(extract_arguments(t5_dir, output)) == 0


@pytest.mark.slow
def test_two_extract_runs_at_once_never_write_a_record_twice(tmp_path: Path, t5_dir: Path) -> None:
    output = tmp_path / "r"
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "tokendistill.cli", *extract_arguments(t5_dir, output, "--limit", "48")]
    runs = [subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, err in results:
        if code == 2:
            assert "in use by" in err and "Traceback" not in err
    ids = [json.loads(line)["id"] for line in (output / "records.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 48


def test_damaged_checkpoint_is_one_line_and_overwrite_clears_it(
    tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "student"
    arguments = train_arguments(t5_dir, output, "--checkpoint-every", "2")
    plant_checkpoint(output, arguments, {"step": 2})
    data = (output / CHECKPOINT).read_bytes()
    (output / CHECKPOINT).write_bytes(data[: len(data) // 2])  # truncated
    one_line_error(capsys, arguments, "damaged", "--overwrite")
    (output / CHECKPOINT_INFO).write_text("{not json")
    one_line_error(capsys, arguments, "checkpoint.json is damaged", "--overwrite")
    assert main([*arguments, "--overwrite"]) == 0


def test_damaged_manifest_is_one_line_and_overwrite_clears_it(
    tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "r"
    assert main(extract_arguments(t5_dir, output)) == 0
    (output / "manifest.json").write_text('{"identity": ')
    one_line_error(capsys, extract_arguments(t5_dir, output), "manifest.json is damaged", "--overwrite")
    assert main(extract_arguments(t5_dir, output, "--overwrite")) == 0
    assert json.loads((output / "manifest.json").read_text())["complete"]


def test_a_damaged_record_in_the_middle_is_reported_and_recomputed(
    tmp_path: Path, t5_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reference, damaged = tmp_path / "reference", tmp_path / "damaged"
    assert main(extract_arguments(t5_dir, reference)) == 0
    shutil.copytree(reference, damaged)
    lines = (damaged / "records.jsonl").read_text().splitlines(keepends=True)
    lines[5] = lines[5][:20] + "\n"  # a broken line with good ones after it
    lines.insert(9, lines[8])  # and a repeated record
    (damaged / "records.jsonl").write_text("".join(lines))
    manifest = json.loads((damaged / "manifest.json").read_text())
    (damaged / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    assert main(extract_arguments(t5_dir, damaged)) == 0
    assert "2 damaged or repeated record line(s) dropped" in caplog.text
    reference_records = sorted((reference / "records.jsonl").read_text().splitlines())
    assert sorted((damaged / "records.jsonl").read_text().splitlines()) == reference_records


def test_a_full_disk_is_one_line_and_the_rerun_finishes_identically(
    tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokendistill import folders

    reference, full = tmp_path / "reference", tmp_path / "full"
    assert main(extract_arguments(t5_dir, reference)) == 0
    real_write, writes = os.write, []

    def write_until_full(descriptor: int, data: bytes) -> int:
        writes.append(len(data))
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(full / "records.jsonl"))
        return real_write(descriptor, data)

    monkeypatch.setattr(folders.os, "write", write_until_full)  # append_lines: the one way records are written
    one_line_error(capsys, extract_arguments(t5_dir, full), "No space left on device", "records.jsonl",
                   "run the same command again")
    monkeypatch.setattr(folders.os, "write", real_write)
    assert main(extract_arguments(t5_dir, full)) == 0
    assert (full / "records.jsonl").read_bytes() == (reference / "records.jsonl").read_bytes()


def test_an_unwritable_output_is_one_line(
    tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(path: object, flags: int, *rest: object) -> int:
        if str(path).endswith(".tokendistill.lock") or "records.jsonl" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *rest)

    monkeypatch.setattr(os, "open", read_only)
    one_line_error(capsys, extract_arguments(t5_dir, tmp_path / "r"), "Read-only file system", "another --output")


def test_the_thread_count_is_recorded(tmp_path: Path, t5_dir: Path) -> None:
    assert main(extract_arguments(t5_dir, tmp_path / "r")) == 0
    assert main(train_arguments(t5_dir, tmp_path / "s")) == 0
    threads = torch.get_num_threads()
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["summary"]["threads"] == threads
    assert json.loads((tmp_path / "s" / "tokendistill.json").read_text())["threads"] == threads


def test_an_extraction_resumed_at_another_thread_count_warns_and_keeps_the_history(
        tmp_path: Path, t5_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tokendistill.faults import ENVIRONMENT_VARIABLE

    output = tmp_path / "r"
    environment = {**os.environ, ENVIRONMENT_VARIABLE: "extract.after_batch:1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "tokendistill.cli", *extract_arguments(t5_dir, output)],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and (output / "records.jsonl").is_file(), result.stderr
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(extract_arguments(t5_dir, output)) == 0
    finally:
        torch.set_num_threads(previous)
    assert "resuming with 2 threads an extraction begun with 1" in caplog.text
    assert json.loads((output / "manifest.json").read_text())["thread_history"] == [1, 2]


def test_a_stale_lock_file_from_a_dead_process_is_taken_over(tmp_path: Path, t5_dir: Path) -> None:
    output = tmp_path / "r"
    output.mkdir()
    (output / folders.LOCK).write_text(json.dumps({"pid": 999999, "host": "gone", "started": time.ctime()}))
    assert main(extract_arguments(t5_dir, output)) == 0
