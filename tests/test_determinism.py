"""One seed, one result: the same tiny pipeline run twice writes the same bytes (timestamps aside)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tokendistill.cli import main

# Fields that hold wall-clock times, the only things allowed to differ.
TIMESTAMPS = {"manifest.json": ("created",), "tokendistill.json": ("seconds",)}


def run_pipeline(root: Path, teacher: Path, student: Path) -> None:
    common = ["--task", "keywords", "--device", "cpu", "--seed", "7"]
    assert main(["extract", *common, "--teacher", str(teacher), "--output", str(root / "rationales"),
                 "--limit", "24", "--top-k", "3", "--max-new-tokens", "3", "--method", "integrated_gradients",
                 "--ig-steps", "4"]) == 0
    assert main(["train", *common, "--student", str(student), "--init", "random", "--output", str(root / "student"),
                 "--mode", "multitask", "--rationales", str(root / "rationales"), "--limit", "24", "--steps", "6",
                 "--batch-size", "4", "--learning-rate", "1e-3"]) == 0
    assert main(["evaluate", *common, "--model", str(root / "student"), "--output", str(root / "eval"),
                 "--limit", "12", "--max-new-tokens", "4"]) == 0


def comparable(path: Path) -> bytes:
    drop = TIMESTAMPS.get(path.name)
    if not drop:
        return path.read_bytes()
    value = json.loads(path.read_text(encoding="utf-8"))
    for key in drop:
        assert key in value, f"{path.name} should still record {key}"
        value.pop(key)
    return json.dumps(value, sort_keys=True).encode()


def test_same_seed_gives_identical_outputs(tmp_path: Path, t5_dir: Path, llama_dir: Path) -> None:
    run = tmp_path / "run"
    run_pipeline(run, llama_dir, t5_dir)
    first = tmp_path / "first"
    shutil.move(run, first)
    run_pipeline(run, llama_dir, t5_dir)

    first_files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    second_files = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file())
    assert first_files == second_files
    assert len(first_files) >= 10
    for relative in first_files:
        assert comparable(first / relative) == comparable(run / relative), f"{relative} differs"
    manifest = json.loads((run / "rationales" / "manifest.json").read_text())
    assert manifest["summary"]["seed"] == 7 and "torch" in manifest["versions"]


def test_another_seed_gives_another_student(tmp_path: Path, t5_dir: Path) -> None:
    weights = []
    for seed in ("1", "2"):
        output = tmp_path / seed
        assert main(["train", "--task", "keywords", "--student", str(t5_dir), "--init", "random", "--output",
                     str(output), "--limit", "8", "--steps", "2", "--batch-size", "4", "--seed", seed,
                     "--device", "cpu"]) == 0
        weights.append((output / "model.safetensors").read_bytes())
    assert weights[0] != weights[1]
