"""The trainer as a whole: a few steps of every mode on a tiny model give the losses pinned here, so that a
rewrite of the loop (setup, step, checkpoint, save) that changes what is learned fails at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tokendistill.cli import main

# Losses of steps 1-3 (keywords, 16 rows, batch 4, lr 1e-3, seed 0, 1 thread); the test prints them: after a change meant
# to change what is learned, pin the new ones and say why in the commit.
PINNED: dict[str, list[float]] = {
    "t5 standard": [6.378301, 5.526959, 5.491534],
    "t5 multitask": [6.124944, 5.490192, 5.814407],
    "t5 label_then_tokens": [6.040359, 5.568388, 5.6523],
    "t5 multitask_kd": [6.143434, 5.507775, 5.867176],
    "t5 multitask --task-marker decoder": [6.015816, 5.623437, 5.629748],
    "llama standard": [4.85086, 4.823605, 4.764654],
    "llama multitask": [4.855927, 4.814036, 4.790408],
    "llama multitask --task-marker shared_prompt": [4.856366, 4.823959, 4.801715],
}


def losses(tmp_path: Path, student: Path, mode: str, rationales: Path | None, *extra: str) -> list[float]:
    output = tmp_path / f"{student.name}-{mode}-{'-'.join(extra) or 'plain'}"
    arguments = ["train", "--task", "keywords", "--student", str(student), "--output", str(output), "--mode", mode,
                 "--limit", "16", "--steps", "3", "--batch-size", "4", "--learning-rate", "1e-3", "--device", "cpu",
                 *extra]
    if rationales is not None:
        arguments += ["--rationales", str(rationales)]
    if mode == "multitask_kd":
        arguments += ["--teacher", str(student)]
    assert main(arguments) == 0
    return [entry["loss"] for entry in map(json.loads, (output / "train_log.jsonl").read_text().splitlines())]


CASES = [("t5", "standard"), ("t5", "multitask"), ("t5", "label_then_tokens"), ("t5", "multitask_kd"),
         ("t5", "multitask", "--task-marker", "decoder"), ("llama", "standard"), ("llama", "multitask"),
         ("llama", "multitask", "--task-marker", "shared_prompt")]


@pytest.mark.slow
def test_a_few_steps_of_every_mode_give_the_pinned_losses(tmp_path: Path, t5_dir: Path, llama_dir: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU sums are bit-identical only at one thread count (docs/reliability.md)
    try:
        found = {}
        for student_name, mode, *extra in CASES:
            student = {"t5": t5_dir, "llama": llama_dir}[student_name]
            rationales = None
            if mode != "standard":
                rationales = tmp_path / f"words-{student_name}"
                if not rationales.exists():
                    assert main(["extract", "--task", "keywords", "--teacher", str(student), "--output",
                                 str(rationales), "--limit", "16", "--top-k", "2", "--target", "gold",
                                 "--device", "cpu"]) == 0
            found[" ".join([student_name, mode, *extra])] = losses(tmp_path, student, mode, rationales, *extra)
    finally:
        torch.set_num_threads(threads)
    print(json.dumps(found, indent=1))
    assert set(found) == set(PINNED)
    for case, values in found.items():
        assert values == pytest.approx(PINNED[case], rel=1e-4, abs=1e-5), case


def test_eval_every_scores_held_out_rows_and_keep_best_saves_the_best_step(
        tmp_path: Path, llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    from tokendistill.training import answers

    scripted = iter([0.5, 0.9, 0.1])  # the scores of steps 2, 4, 6: the best is step 4
    checksums: dict[int, float] = {}

    def scripted_predict(loaded, task, examples, *args, **kwargs):
        assert all(example.id.startswith("valid-") for example in examples) and len(examples) == 8
        checksums[len(checksums)] = float(sum(p.double().sum() for p in loaded.model.parameters()))
        return [], next(scripted)

    monkeypatch.setattr(answers, "predict", scripted_predict)
    output = tmp_path / "best"
    assert main(["train", "--task", "keywords", "--student", str(llama_dir), "--output", str(output), "--limit", "16",
                 "--steps", "6", "--batch-size", "4", "--learning-rate", "1e-2", "--device", "cpu",
                 "--eval-every", "2", "--eval-limit", "8", "--keep-best"]) == 0
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert [(e["step"], e["eval_accuracy"]) for e in log if "eval_accuracy" in e] == [(2, 0.5), (4, 0.9), (6, 0.1)]
    info = json.loads((output / "tokendistill.json").read_text())
    assert (info["best_step"], info["best_eval_accuracy"], info["eval_split"]) == (4, 0.9, "valid")
    saved = sum(tensor.double().sum() for tensor in load_file(output / "model.safetensors").values())
    assert float(saved) == pytest.approx(checksums[1], rel=1e-6) != pytest.approx(checksums[2], rel=1e-6)
    assert not (output / "best_weights.pt").exists()


def test_eval_every_refuses_the_training_split_and_keep_best_alone(tmp_path: Path, llama_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", "--task", "keywords", "--student", str(llama_dir), "--limit", "8", "--steps", "2",
            "--batch-size", "4", "--device", "cpu"]
    assert main([*base, "--output", str(tmp_path / "a"), "--eval-every", "1", "--eval-split", "train"]) == 2
    assert "is the training split" in capsys.readouterr().err
    assert main([*base, "--output", str(tmp_path / "b"), "--keep-best"]) == 2
    assert "pass --eval-every N too" in capsys.readouterr().err


def test_report_to_logs_every_step_through_accelerate(tmp_path: Path, t5_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from accelerate.tracking import GeneralTracker

    logged: list[tuple[int, dict]] = []

    class Recording(GeneralTracker):
        name, requires_logging_directory = "recording", False

        def __init__(self) -> None:
            super().__init__()

        @property
        def tracker(self):
            return self

        def store_init_configuration(self, values: dict) -> None:
            logged.append((0, values))

        def log(self, values: dict, step: int | None = None, **kwargs) -> None:
            logged.append((step, values))

    from tokendistill.training import setup, trainer

    monkeypatch.setattr(trainer, "trackers", lambda config: [Recording()] if config.report_to else [])
    output = tmp_path / "tracked"
    assert main(["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(output), "--limit", "8",
                 "--steps", "3", "--batch-size", "4", "--device", "cpu", "--report-to", "recording"]) == 0
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert logged[0][0] == 0 and logged[0][1]["steps"] == 3  # the run's configuration first
    assert [(step, values["loss"]) for step, values in logged[1:]] == [(e["step"], e["loss"]) for e in log]
    # Trackers write beside the student folder, never in it: a push uploads that folder.
    assert setup.tracker_folder(output) == tmp_path / "tracked-trackers"
    monkeypatch.undo()
    assert main(["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(tmp_path / "x"),
                 "--steps", "1", "--report-to", "tensorbored"]) == 2
    assert "unknown tracker" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_max_grad_norm_clips_every_step_and_logs_the_norm(tmp_path: Path, llama_dir: Path) -> None:
    from safetensors.torch import load_file

    start = load_file(llama_dir / "model.safetensors")
    moved, logs = {}, {}
    for norm in ("0", "1e-9"):
        output = tmp_path / f"clip-{norm}"
        assert main(["train", "--task", "keywords", "--student", str(llama_dir), "--output", str(output), "--limit",
                     "8", "--steps", "2", "--batch-size", "4", "--learning-rate", "1e-3", "--device", "cpu",
                     "--max-grad-norm", norm]) == 0
        weights = load_file(output / "model.safetensors")
        moved[norm] = sum(float((weights[name].double() - start[name].double()).abs().sum()) for name in start)
        logs[norm] = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert all("grad_norm" not in entry for entry in logs["0"])
    assert all(entry["grad_norm"] > 1e-9 for entry in logs["1e-9"])  # the norm before the clip
    # Clipped to a norm of 1e-9, each gradient element falls far under AdamW's eps: the weights hardly move.
    assert moved["1e-9"] < 0.01 * moved["0"]


def test_periodic_checkpoints_are_refused_under_deepspeed_alone() -> None:
    """FSDP runs checkpoint their gathered shards (tests/test_distributed.py kills and resumes one)."""
    from tokendistill.training.checkpoints import sharded_checkpoint_problem

    assert "--checkpoint-every 0" in sharded_checkpoint_problem("DEEPSPEED", 100)
    assert sharded_checkpoint_problem("DEEPSPEED", 0) is None
    for unsharded_or_fsdp in ("FSDP", "MULTI_CPU", "MULTI_GPU", "NO"):
        assert sharded_checkpoint_problem(unsharded_or_fsdp, 100) is None
