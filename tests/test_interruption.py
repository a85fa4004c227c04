"""Killed runs resume to the same result: extract and train are SIGKILLed at exact points and re-run.

The crash points (tokendistill.faults) make the process kill itself mid-write, between batches, between a
checkpoint's write and its rename, and between steps; one more kill comes from outside at a moment set by a
timer. After each, the same command is run again; the outputs must equal an uninterrupted run's byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

from tokendistill.cli import main
from tokendistill.faults import ENVIRONMENT_VARIABLE


def run_subprocess(arguments: list[str], kill_at: str | None = None) -> int:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    environment.pop(ENVIRONMENT_VARIABLE, None)
    if kill_at:
        environment[ENVIRONMENT_VARIABLE] = kill_at
    result = subprocess.run(
        [sys.executable, "-m", "tokendistill.cli", *arguments], env=environment, capture_output=True, text=True,
        timeout=300,
    )
    if result.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(result.stderr)
    return result.returncode


def extract_arguments(teacher: Path, output: Path) -> list[str]:
    return ["extract", "--task", "keywords", "--teacher", str(teacher), "--output", str(output), "--limit", "40",
            "--batch-size", "8", "--top-k", "3", "--max-new-tokens", "3", "--device", "cpu"]


def records_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_extract_killed_mid_write_and_between_batches_resumes_to_identical_records(
    tmp_path: Path, t5_dir: Path
) -> None:
    reference = tmp_path / "reference"
    assert main(extract_arguments(t5_dir, reference)) == 0
    resumed = tmp_path / "resumed"
    arguments = extract_arguments(t5_dir, resumed)

    assert run_subprocess(arguments, kill_at="store.mid_write:2") == -signal.SIGKILL
    torn = (resumed / "records.jsonl").read_bytes()
    assert not torn.endswith(b"\n"), "the kill should have left half a batch on disk"
    assert not json.loads((resumed / "manifest.json").read_text())["complete"]

    assert run_subprocess(arguments, kill_at="extract.after_batch:1") == -signal.SIGKILL
    assert 8 < len(records_of(resumed)) < 40

    assert run_subprocess(arguments) == 0
    assert (resumed / "records.jsonl").read_bytes() == (reference / "records.jsonl").read_bytes()
    ids = [record["id"] for record in records_of(resumed)]
    assert len(ids) == len(set(ids)) == 40, "no record lost, none duplicated"
    assert json.loads((resumed / "manifest.json").read_text())["complete"]


@pytest.mark.slow
def test_extract_killed_from_outside_at_a_random_moment_resumes(tmp_path: Path, t5_dir: Path) -> None:
    reference = tmp_path / "reference"
    assert main(extract_arguments(t5_dir, reference)) == 0
    resumed = tmp_path / "resumed"
    arguments = extract_arguments(t5_dir, resumed)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "tokendistill.cli", *arguments], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = resumed / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if records.exists() and records.stat().st_size > 0:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run_subprocess(arguments) == 0
    assert records.read_bytes() == (reference / "records.jsonl").read_bytes()


@pytest.fixture(scope="module")
def dropout_student(tmp_path_factory: pytest.TempPathFactory, t5_dir: Path) -> Path:
    """The tiny T5 with dropout on, so that resuming must restore the random state too."""
    folder = tmp_path_factory.mktemp("dropout-t5")
    config = AutoConfig.from_pretrained(t5_dir)
    config.dropout_rate = 0.1
    AutoModelForSeq2SeqLM.from_pretrained(t5_dir, config=config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(t5_dir).save_pretrained(folder)
    return folder


def train_arguments(student: Path, rationales: Path, output: Path) -> list[str]:
    return ["train", "--task", "keywords", "--student", str(student), "--output", str(output), "--mode", "multitask",
            "--rationales", str(rationales), "--limit", "40", "--steps", "24", "--batch-size", "4",
            "--checkpoint-every", "5", "--learning-rate", "1e-3", "--device", "cpu"]


@pytest.mark.slow
def test_train_killed_mid_checkpoint_and_between_steps_resumes_to_identical_weights(
    tmp_path: Path, t5_dir: Path, dropout_student: Path
) -> None:
    rationales = tmp_path / "rationales"
    assert main(extract_arguments(t5_dir, rationales)) == 0
    reference = tmp_path / "reference"
    assert main(train_arguments(dropout_student, rationales, reference)) == 0
    resumed = tmp_path / "resumed"
    arguments = train_arguments(dropout_student, rationales, resumed)

    # Killed after writing the step-10 checkpoint but before renaming it: step 5's must still be whole.
    assert run_subprocess(arguments, kill_at="train.mid_checkpoint:2") == -signal.SIGKILL
    assert list(resumed.glob(".checkpoint.pt.*.tmp")) and (resumed / "checkpoint.pt").exists()
    # Resumed at step 5, killed after 8 more steps (step 13; the last checkpoint is step 10's).
    assert run_subprocess(arguments, kill_at="train.after_step:8") == -signal.SIGKILL
    assert not (resumed / "tokendistill.json").exists()
    assert run_subprocess(arguments) == 0

    assert (resumed / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    assert (resumed / "train_log.jsonl").read_text() == (reference / "train_log.jsonl").read_text()
    assert json.loads((resumed / "tokendistill.json").read_text())["resumed_at_step"] == 10
    assert not (resumed / "checkpoint.pt").exists() and not list(resumed.glob(".*.tmp"))

    metrics = []
    for folder in (reference, resumed):
        assert main(["evaluate", "--task", "keywords", "--model", str(folder), "--output", str(folder / "eval"),
                     "--limit", "16", "--max-new-tokens", "4", "--device", "cpu"]) == 0
        metrics.append(json.loads((folder / "eval" / "metrics.json").read_text())["accuracy"])
    assert metrics[0] == metrics[1]


def test_finished_training_run_is_not_recomputed(tmp_path: Path, t5_dir: Path) -> None:
    output = tmp_path / "student"
    arguments = ["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(output), "--limit", "8",
                 "--steps", "2", "--batch-size", "4", "--device", "cpu"]
    assert main(arguments) == 0
    weights = output / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert main(arguments) == 0
    assert weights.stat().st_mtime_ns == stamp
    # Another configuration into the same folder is refused, and allowed with --overwrite.
    assert main([*arguments, "--steps", "3"]) == 2
    assert main([*arguments, "--steps", "3", "--overwrite"]) == 0
    assert json.loads((output / "tokendistill.json").read_text())["steps"] == 3


@pytest.mark.slow
def test_grid_killed_inside_a_cell_resumes_to_the_same_results(tmp_path: Path, t5_dir: Path) -> None:
    import yaml

    experiment = {
        "device": "cpu",
        "tasks": [{"name": "keywords", "train_sizes": [16], "test_limit": 8}],
        "teacher": {"model": str(t5_dir), "extract": {"batch_size": 8, "max_new_tokens": 2}},
        "student": {"model": str(dropout_student_path(tmp_path, t5_dir)),
                    "train": {"steps": 8, "batch_size": 4, "checkpoint_every": 3, "learning_rate": 1e-3},
                    "evaluate": {"max_new_tokens": 3}},
        "modes": ["standard", "multitask"],
        "top_k": [2],
        "seeds": [0],
        "competence": {"on_failure": "warn"},  # tiny random models learn nothing
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["run", str(path), "--output", str(tmp_path / "reference")]) == 0
    arguments = ["run", str(path), "--output", str(tmp_path / "resumed")]
    # The 13th step overall is the 5th of the second cell: killed after its step-3 checkpoint.
    assert run_subprocess(arguments, kill_at="train.after_step:13") == -signal.SIGKILL
    assert run_subprocess(arguments, kill_at="store.mid_write:99") == 0
    for name in ("results.csv", "results.md"):
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "reference" / name).read_text()
    reference = sorted((tmp_path / "reference").rglob("model.safetensors"))
    resumed = sorted((tmp_path / "resumed").rglob("model.safetensors"))
    assert len(reference) == len(resumed) == 2
    assert [p.read_bytes() for p in reference] == [p.read_bytes() for p in resumed]


def dropout_student_path(tmp_path: Path, t5_dir: Path) -> Path:
    folder = tmp_path / "dropout-student"
    config = AutoConfig.from_pretrained(t5_dir)
    config.dropout_rate = 0.1
    AutoModelForSeq2SeqLM.from_pretrained(t5_dir, config=config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(t5_dir).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_evaluate_killed_between_chunks_resumes_to_identical_predictions(tmp_path: Path, t5_dir: Path) -> None:
    student = tmp_path / "student"
    assert run_subprocess(["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(student),
                           "--limit", "8", "--steps", "1", "--batch-size", "4", "--device", "cpu"]) == 0

    def evaluate(output: Path, kill_at: str | None = None) -> int:
        return run_subprocess(["evaluate", "--model", str(student), "--output", str(output), "--limit", "40",
                               "--max-new-tokens", "3", "--batch-size", "8", "--device", "cpu"], kill_at)

    import tokendistill.evaluation as evaluation

    assert evaluation.EVALUATION_CHUNK > 8  # the environment below makes chunks of 8 in the subprocesses
    os.environ["TOKENDISTILL_EVALUATION_CHUNK"] = "8"
    try:
        assert evaluate(tmp_path / "whole") == 0
        assert evaluate(tmp_path / "killed", "evaluate.after_chunk:2") == -signal.SIGKILL
        partial = (tmp_path / "killed" / "predictions.partial.jsonl").read_text().splitlines()
        assert len(partial) == 1 + 16  # the identity, then two chunks of 8 rows
        assert evaluate(tmp_path / "killed") == 0
    finally:
        del os.environ["TOKENDISTILL_EVALUATION_CHUNK"]
    assert (tmp_path / "killed" / "predictions.jsonl").read_bytes() == (tmp_path / "whole" / "predictions.jsonl").read_bytes()
    assert not (tmp_path / "killed" / "predictions.partial.jsonl").exists()
