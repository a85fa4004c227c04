"""A checkpoint is read as possibly hostile: every field checked by type, shape and range before any is used; a bad
one is one line, exit 2, and the folder stays as it was (no never-trained student marked finished)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tokendistill.cli import main
from tokendistill.faults import ENVIRONMENT_VARIABLE

ARGUMENTS = ["--task", "keywords", "--limit", "8", "--steps", "4", "--batch-size", "2", "--checkpoint-every", "1",
             "--device", "cpu"]


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory, llama_dir: Path) -> Path:
    """A run killed after its second step: its folder holds the checkpoint of step 2 (of 4)."""
    folder = tmp_path_factory.mktemp("killed") / "student"
    result = subprocess.run([sys.executable, "-m", "tokendistill.cli", "train", *ARGUMENTS, "--student", str(llama_dir),
                             "--output", str(folder)], env={**__import__("os").environ,
                                                             ENVIRONMENT_VARIABLE: "train.after_step:2"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and (folder / "checkpoint.pt").is_file(), result.stderr
    return folder


def _set(path: tuple, value: object):
    def change(state: dict) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


MUTATIONS = {
    "step as text": _set(("step",), "2"), "step as a bool": _set(("step",), True), "step 0": _set(("step",), 0),
    "negative step": _set(("step",), -1), "step at the last": _set(("step",), 4), "step past the last": _set(("step",), 99),
    "history empty": _set(("history",), []), "history as text": _set(("history",), "x"),
    "history without losses": _set(("history",), [{"step": 1}, {"step": 2}]),
    "model empty": _set(("model",), {}), "model of numbers": _set(("model",), {"w": 1}),
    "optimizer a list": _set(("optimizer",), []), "scheduler none": _set(("scheduler",), None),
    "rng empty": _set(("rng",), {}), "python rng short": _set(("rng", "python"), [3, [1, 2], None]),
    "numpy rng shape": _set(("rng", "numpy"), ["MT19937", torch.zeros(3, dtype=torch.int64), 0, 0, 0.0]),
    "torch rng floats": _set(("rng", "torch"), torch.zeros(5)),
    "per-process rng empty": _set(("rng_by_rank",), []), "per-process rng damaged": _set(("rng_by_rank",), [{}]),
    "threads negative": _set(("threads",), -1), "threads as text": _set(("threads",), "2"),
    "unknown format": _set(("format",), 7),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_damaged_checkpoint_field_is_one_line_and_nothing_changes(
        mutation: str, killed_run: Path, tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "student"
    shutil.copytree(killed_run, folder)
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    MUTATIONS[mutation](state)
    torch.save(state, folder / "checkpoint.pt")
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.name != ".tokendistill.lock"}
    assert main(["train", *ARGUMENTS, "--student", str(llama_dir), "--output", str(folder)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("tokendistill: error: ") and "checkpoint.pt" in lines[-1]
    assert "Traceback" not in "\n".join(lines)
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.name != ".tokendistill.lock"} == before
    assert not (folder / "tokendistill.json").exists()


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_checkpoint_that_is_not_one_is_one_line(damage: str, killed_run: Path, tmp_path: Path, llama_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "student"
    shutil.copytree(killed_run, folder)
    data = (folder / "checkpoint.pt").read_bytes()
    (folder / "checkpoint.pt").write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(range(256)) * 9)
    assert main(["train", *ARGUMENTS, "--student", str(llama_dir), "--output", str(folder)]) == 2
    assert "checkpoint.pt" in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_intact_checkpoint_resumes(killed_run: Path, tmp_path: Path, llama_dir: Path) -> None:
    folder = tmp_path / "student"
    shutil.copytree(killed_run, folder)
    assert main(["train", *ARGUMENTS, "--student", str(llama_dir), "--output", str(folder)]) == 0
    assert (folder / "tokendistill.json").is_file()


def test_a_run_resumed_at_another_thread_count_keeps_every_sessions_count(
        killed_run: Path, tmp_path: Path, llama_dir: Path) -> None:
    folder = tmp_path / "student"
    shutil.copytree(killed_run, folder)
    first = torch.load(folder / "checkpoint.pt", weights_only=True)["threads"]
    other = 1 if first != 1 else 2
    previous = torch.get_num_threads()
    torch.set_num_threads(other)
    try:
        assert main(["train", *ARGUMENTS, "--student", str(llama_dir), "--output", str(folder)]) == 0
    finally:
        torch.set_num_threads(previous)
    info = json.loads((folder / "tokendistill.json").read_text())
    assert info["thread_history"] == [first, other] and info["threads"] == other
