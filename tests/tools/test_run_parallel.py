"""tools/run_parallel.py runs the shipped four-task GPU design (configs/decisive/gpu-*.yaml) end to end: here on
the CPU, with tiny random models in place of SmolLM2 and a few rows, so that the GPU run fails on nothing but
the GPU."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GPU_CONFIGS = sorted((ROOT / "configs" / "decisive").glob("gpu-*.yaml"))


def load_tool():
    spec = importlib.util.spec_from_file_location("run_parallel", ROOT / "tools" / "run_parallel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shrunk(config: Path, folder: Path, model: Path, data: Path) -> Path:
    """The shipped grid with its every factor kept (tasks, modes, controls, k, targets, competence) and its sizes cut."""
    experiment = yaml.safe_load(config.read_text())
    experiment["device"] = "cpu"
    experiment["seeds"] = [0]
    for task in experiment["tasks"]:
        task.update(data=str(data), train_sizes=[8], test_limit=6)
    experiment["teacher"]["model"] = experiment["student"]["model"] = str(model)
    experiment["teacher"]["finetune"].update(limit=16, steps=2, batch_size=4)
    experiment["teacher"]["extract"].update(batch_size=4)
    experiment["student"]["train"].update(steps=2, batch_size=4)
    experiment["student"]["evaluate"].update(batch_size=8)
    path = folder / config.name
    path.write_text(yaml.safe_dump(experiment))
    return path


@pytest.mark.slow
def test_the_four_task_gpu_design_runs_end_to_end_on_tiny_models(tmp_path: Path, llama_dir: Path,
                                                                  dss_data: Path) -> None:
    assert {path.stem for path in GPU_CONFIGS} == {"gpu-esnli", "gpu-anli1", "gpu-cqa", "gpu-svamp"}
    configs = [str(shrunk(path, tmp_path, llama_dir, dss_data)) for path in GPU_CONFIGS]
    output = tmp_path / "runs"
    assert load_tool().main([*configs, "--output", str(output), "--jobs", "2"]) == 0
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == sorted(f"{Path(c).stem}-seed0" for c in configs)
    with (output / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    cells = {(row["task"], row["mode"], row["method"]) for row in rows}
    for task in ("esnli", "anli1", "cqa", "svamp"):
        assert {(task, "standard", ""), (task, "multitask", "saliency"), (task, "multitask", "random"),
                (task, "dss", ""), (task, "multitask_kd", "saliency")} <= cells, task
    assert all(row["test_rows"] == "6" and row["teacher_accuracy"] != "" for row in rows)
    # A second run resumes: every cell is found finished, nothing fails.
    assert load_tool().main([*configs, "--output", str(output), "--jobs", "2"]) == 0
