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
TASKS = ("esnli", "anli1", "cqa", "svamp")
# The four-task design; gpu-esnli-verdict.yaml, the verdict grid with align, is a grid of its own (tested below).
GPU_CONFIGS = [ROOT / "configs" / "decisive" / f"gpu-{task}.yaml" for task in TASKS]
VERDICT_CONFIG = ROOT / "configs" / "decisive" / "gpu-esnli-verdict.yaml"


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
    # Tiny random models are never competent; the check still runs, and warns instead of stopping the grid.
    experiment.setdefault("competence", {})["on_failure"] = "warn"
    path = folder / config.name
    path.write_text(yaml.safe_dump(experiment))
    return path


@pytest.mark.slow
def test_the_four_task_gpu_design_runs_end_to_end_on_tiny_models(tmp_path: Path, llama_dir: Path,
                                                                  dss_data: Path) -> None:
    shipped = {path.stem for path in (ROOT / "configs" / "decisive").glob("gpu-*.yaml")}
    assert shipped == {path.stem for path in GPU_CONFIGS} | {VERDICT_CONFIG.stem}, "a GPU design this file does not run"
    configs = [str(shrunk(path, tmp_path, llama_dir, dss_data)) for path in GPU_CONFIGS]
    output = tmp_path / "runs"
    assert load_tool().main([*configs, "--output", str(output), "--jobs", "2"]) == 0
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == sorted(f"{Path(c).stem}-seed0" for c in configs)
    with (output / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    cells = {(row["task"], row["mode"], row["method"]) for row in rows}
    for task in TASKS:
        assert {(task, "standard", ""), (task, "multitask", "saliency"), (task, "multitask", "random"),
                (task, "dss", ""), (task, "multitask_kd", "saliency")} <= cells, task
    assert all(row["test_rows"] == "6" and row["teacher_accuracy"] != "" for row in rows)
    # A second run resumes: every cell is found finished, nothing fails.
    assert load_tool().main([*configs, "--output", str(output), "--jobs", "2"]) == 0


@pytest.mark.slow
def test_the_gpu_verdict_grid_with_align_runs_end_to_end_on_tiny_models(tmp_path: Path, llama_dir: Path,
                                                                        dss_data: Path) -> None:
    config = str(shrunk(VERDICT_CONFIG, tmp_path, llama_dir, dss_data))
    output = tmp_path / "runs"
    assert load_tool().main([config, "--output", str(output), "--jobs", "1"]) == 0
    with (output / "results.csv").open() as handle:
        cells = {(row["mode"], row["method"]) for row in csv.DictReader(handle)}
    assert {("align", "saliency"), ("align", "random_matched"), ("kd", ""), ("multitask_kd", "random_matched"),
            ("standard", "")} <= cells
