"""Two processes (torchrun, gloo on CPU) give what one process gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FSDP_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "accelerate" / "8gpu-fsdp.yaml"
FSDP_ON_CPU = Path(__file__).with_name("fsdp_on_cpu.py")
ENVIRONMENT = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def launch(arguments: list[str], processes: int, kill_at: str | None = None, launcher: str = "torchrun") -> int:
    environment = dict(ENVIRONMENT)
    environment.pop("TOKENDISTILL_KILL_AT", None)
    if kill_at:
        environment["TOKENDISTILL_KILL_AT"] = kill_at
    if processes == 1:
        command = [sys.executable, "-m", "tokendistill.cli", *arguments]
    elif launcher == "accelerate":
        # `--cpu` would make accelerate start one process; `--multi_gpu` starts torchrun's, gloo on CPU.
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", f"--num_processes={processes}",
                   "--num_machines=1", "--mixed_precision=no", "--dynamo_backend=no",
                   "-m", "tokendistill.cli", *arguments]
    elif launcher == "fsdp":
        # The shipped FSDP config on CPU processes: tests/fsdp_on_cpu.py turns on what accelerate keeps for GPUs.
        command = [sys.executable, "-m", "accelerate.commands.launch", f"--config_file={FSDP_CONFIG}",
                   f"--num_processes={processes}", "--mixed_precision=no", str(FSDP_ON_CPU), *arguments]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "tokendistill.cli", *arguments]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    if kill_at is None and result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    return result.returncode


def extract_arguments(teacher: Path, output: Path) -> list[str]:
    return ["extract", "--task", "keywords", "--teacher", str(teacher), "--output", str(output), "--limit", "40",
            "--batch-size", "4", "--top-k", "3", "--max-new-tokens", "3", "--device", "cpu"]


@pytest.mark.slow
def test_two_process_extraction_equals_one_process_record_for_record(tmp_path: Path, t5_dir: Path) -> None:
    assert launch(extract_arguments(t5_dir, tmp_path / "one"), 1) == 0
    assert launch(extract_arguments(t5_dir, tmp_path / "two"), 2) == 0
    assert (tmp_path / "two" / "records.jsonl").read_bytes() == (tmp_path / "one" / "records.jsonl").read_bytes()
    assert not (tmp_path / "two" / "parts").exists()
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["summary"]["examples"] == 40


@pytest.mark.slow
def test_two_process_extraction_resumes_per_shard(tmp_path: Path, t5_dir: Path) -> None:
    assert launch(extract_arguments(t5_dir, tmp_path / "one"), 1) == 0
    arguments = extract_arguments(t5_dir, tmp_path / "two")
    assert launch(arguments, 2, kill_at="extract.after_batch:2") != 0
    parts = sorted((tmp_path / "two" / "parts").iterdir())
    assert [p.name for p in parts] == ["part-0-of-2", "part-1-of-2"]
    assert launch(arguments, 2) == 0
    assert (tmp_path / "two" / "records.jsonl").read_bytes() == (tmp_path / "one" / "records.jsonl").read_bytes()


def read_log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


def train_arguments(student: Path, rationales: Path, output: Path) -> list[str]:
    return ["train", "--task", "keywords", "--student", str(student), "--output", str(output), "--mode", "multitask",
            "--rationales", str(rationales), "--limit", "24", "--steps", "6", "--batch-size", "8",
            "--learning-rate", "1e-3", "--device", "cpu"]


@pytest.mark.slow
def test_two_process_training_matches_one_process(tmp_path: Path, t5_dir: Path) -> None:
    """Same loss history and weights up to the order of the gradient all-reduce (float32 sums)."""
    import torch
    from safetensors.torch import load_file

    rationales = tmp_path / "r"
    assert launch(extract_arguments(t5_dir, rationales), 1) == 0
    assert launch(train_arguments(t5_dir, rationales, tmp_path / "one"), 1) == 0
    assert launch([*train_arguments(t5_dir, rationales, tmp_path / "acc"), "--gradient-accumulation", "2"], 1) == 0
    assert launch(train_arguments(t5_dir, rationales, tmp_path / "two"), 2) == 0
    assert launch(train_arguments(t5_dir, rationales, tmp_path / "two-accelerate"), 2, launcher="accelerate") == 0
    for folder in ("two", "two-accelerate"):
        info = json.loads((tmp_path / folder / "tokendistill.json").read_text())
        assert (info["processes"], info["distributed_type"]) == (2, "MULTI_CPU")
    reference = read_log(tmp_path / "one")
    for other in ("acc", "two", "two-accelerate"):
        history = read_log(tmp_path / other)
        assert len(history) == len(reference) == 6
        for ours, theirs in zip(history, reference):
            for key in ("loss", "label_loss", "rationale_loss"):
                assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5), (other, key)
        weights, expected = load_file(tmp_path / other / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
        for name, tensor in expected.items():
            torch.testing.assert_close(weights[name], tensor, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_two_process_training_killed_between_steps_resumes_to_identical_weights(tmp_path: Path, t5_dir: Path) -> None:
    """With dropout on, each process draws its own random numbers (its rows differ in length): the checkpoint holds
    every process's random state, so that a resumed two-process run equals an uninterrupted one, byte for byte."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    student = tmp_path / "dropout-t5"
    config = AutoConfig.from_pretrained(t5_dir)
    config.dropout_rate = 0.1
    AutoModelForSeq2SeqLM.from_pretrained(t5_dir, config=config).save_pretrained(student)
    AutoTokenizer.from_pretrained(t5_dir).save_pretrained(student)
    rationales = tmp_path / "r"
    assert launch(extract_arguments(t5_dir, rationales), 1) == 0

    def arguments(output: Path) -> list[str]:
        return [*train_arguments(student, rationales, output), "--steps", "8", "--checkpoint-every", "3"]

    assert launch(arguments(tmp_path / "whole"), 2) == 0
    assert launch(arguments(tmp_path / "killed"), 2, kill_at="train.after_step:5") != 0
    assert (tmp_path / "killed" / "checkpoint.pt").exists() and not (tmp_path / "killed" / "tokendistill.json").exists()
    assert launch(arguments(tmp_path / "killed"), 2) == 0
    info = json.loads((tmp_path / "killed" / "tokendistill.json").read_text())
    assert info["resumed_at_step"] == 3
    for name in ("model.safetensors", "train_log.jsonl"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("family", ["seq2seq", "causal"])
def test_fsdp_training_checkpoints_the_gathered_shards_and_resumes_to_identical_weights(
        tmp_path: Path, t5_dir: Path, llama_dir: Path, family: str) -> None:
    """Under the shipped FSDP config (FSDP2, here on CPU processes) each process holds a shard of the weights and
    of the optimizer state. A checkpoint gathers the whole state; a killed run resumes from it to the bytes of an
    uninterrupted one, and one process can resume it too. The T5 student ties one embedding matrix to four
    modules, which FSDP takes in one group only."""
    import torch
    from safetensors.torch import load_file

    from tokendistill.training.checkpoints import load_checkpoint

    student = t5_dir if family == "seq2seq" else llama_dir
    rationales = tmp_path / "r"
    assert launch(extract_arguments(t5_dir, rationales), 1) == 0

    def arguments(output: Path) -> list[str]:
        return [*train_arguments(student, rationales, output), "--steps", "8", "--checkpoint-every", "3"]

    assert launch(arguments(tmp_path / "one"), 1) == 0
    assert launch(arguments(tmp_path / "whole"), 2, launcher="fsdp") == 0
    info = json.loads((tmp_path / "whole" / "tokendistill.json").read_text())
    assert (info["processes"], info["distributed_type"]) == (2, "FSDP")
    for ours, theirs in zip(read_log(tmp_path / "whole"), read_log(tmp_path / "one"), strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4, abs=1e-5)

    killed = tmp_path / "killed"
    assert launch(arguments(killed), 2, kill_at="train.after_step:5", launcher="fsdp") != 0
    checkpoint = load_checkpoint(killed / "checkpoint.pt")
    weights = checkpoint["model"]
    assert {type(tensor) for tensor in weights.values()} == {torch.Tensor}  # whole tensors, not DTensor shards
    for name, tensor in load_file(tmp_path / "one" / "model.safetensors").items():
        assert weights[name].shape == tensor.shape, name
    moments = checkpoint["optimizer"]["state"]
    assert moments and all(state["exp_avg"].shape == weights[name].shape for name, state in moments.items())
    assert checkpoint["step"] == 3
    shutil.copytree(killed, tmp_path / "killed-then-one-process")

    assert launch(arguments(killed), 2, launcher="fsdp") == 0
    assert json.loads((killed / "tokendistill.json").read_text())["resumed_at_step"] == 3
    for name in ("model.safetensors", "train_log.jsonl"):
        assert (killed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name

    alone = tmp_path / "killed-then-one-process"
    assert launch(arguments(alone), 1) == 0
    assert json.loads((alone / "tokendistill.json").read_text())["resumed_at_step"] == 3
    resumed, expected = load_file(alone / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-3, atol=1e-5)
