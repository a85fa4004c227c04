"""The experiment runner: a small grid end to end, resumed for free, and its results table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tokendistill.cli import main
from tokendistill.errors import UserError
from tokendistill.experiment import (
    load_experiment,
    plan,
    results_markdown,
    seed_table,
    select_cells,
    summarize,
)


def write_text_task(folder: Path) -> Path:
    """A second task from local files: the keyword task's records as a plain `text` task."""
    from tokendistill.tasks.synthetic import generate_records

    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", 40), ("test", 16)):
        rows = [{"id": r["id"], "input": r["input"], "label": r["label"]} for r in generate_records(split, size, 5)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def grid_yaml(tmp_path: Path, teacher: Path, student: Path, **extra) -> Path:
    experiment = {
        "output": str(tmp_path / "grid"),
        "device": "cpu",
        "tasks": [
            {"name": "keywords", "train_sizes": [24], "test_limit": 12},
            {"name": "text", "data": str(write_text_task(tmp_path / "data")), "train_sizes": [24], "test_limit": 12},
        ],
        "teacher": {"model": str(teacher), "extract": {"batch_size": 8, "max_new_tokens": 3}},
        "student": {"model": str(student), "train": {"steps": 3, "batch_size": 4, "checkpoint_every": 2},
                    "evaluate": {"max_new_tokens": 3}},
        "modes": ["standard", "multitask"],
        "top_k": [2],
        "seeds": [0, 1],
        **extra,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def test_grid_runs_every_cell_and_a_rerun_recomputes_nothing(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir)
    assert main(["run", str(path)]) == 0
    grid = tmp_path / "grid"
    cells = sorted(grid.rglob("cell.json"))
    assert len(cells) == 2 * 2 * 2  # tasks x modes x seeds
    # The teacher's rationales are computed once per task and shared by every multitask cell.
    assert sorted(p.parent.name for p in grid.rglob("records.jsonl")) == ["rationales-teacher"] * 2
    table, by_seed = (grid / "results.md").read_text().split("by seed:")
    assert table.count("| keywords |") == 2 and table.count("| text |") == 2  # mean over seeds per mode
    assert by_seed.count("| keywords |") == 2 and "| seed 0 | seed 1 |" in by_seed
    csv_lines = (grid / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("task,student,size,mode") and len(csv_lines) == 5

    stamps = {p: p.stat().st_mtime_ns for p in grid.rglob("*") if p.suffix in (".safetensors", ".jsonl")}
    assert main(["run", str(path)]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "a finished grid is not recomputed"
    assert main(["results", str(grid)]) == 0
    assert main(["report", str(grid)]) == 0
    page = (grid / "report.html").read_text()
    assert page.count("<td>multitask</td>") == 2 and page.count("<td>standard</td>") == 2  # one row per task


def test_results_table_arithmetic() -> None:
    rows = [
        {"task": "t", "size": 10, "mode": "standard", "k": None, "target": None, "seed": s, "accuracy": a}
        for s, a in ((0, 0.5), (1, 0.7), (2, 0.6))
    ] + [
        {"task": "t", "size": 10, "mode": "multitask", "k": 5.0, "target": "teacher", "seed": s, "accuracy": a}
        for s, a in ((0, 0.6), (1, 0.9), (2, 0.9))
    ] + [
        {"task": "t", "size": 10, "mode": "dss", "k": None, "target": None, "seed": s, "accuracy": a}
        for s, a in ((0, 0.8), (3, 0.2))
    ] + [{"task": "t", "size": 10, "mode": "label_then_tokens", "k": 5.0, "target": "teacher", "seed": 1,
          "accuracy": 0.75}]
    summary = {entry["mode"]: entry for entry in summarize(rows)}
    assert summary["standard"]["mean"] == pytest.approx(0.6) and summary["standard"]["sd"] == pytest.approx(0.1)
    assert summary["multitask"]["mean"] == pytest.approx(0.8) and summary["multitask"]["sd"] == pytest.approx(0.1732051)
    assert summary["multitask"]["vs_standard"] == pytest.approx(0.2) and summary["standard"]["vs_standard"] is None
    # Paired on the seeds both ran: dss's seed 0 against standard's seed 0 only (+30), not 0.5 - 0.6.
    assert summary["dss"]["vs_standard"] == pytest.approx(0.3) and summary["dss"]["paired_seeds"] == 1
    assert summary["label_then_tokens"]["sd"] is None  # one seed: no spread measured
    table = results_markdown(list(summary.values()), {"t": {"accuracy": {"generation": 0.75}, "best": "generation"}})
    assert "| t | 75.0% (generation) |  | 10 | multitask | 5 | teacher | 3 | 80.0 ± 17.3 | +20.0 |  |" in table
    assert "| dss |  |  | 2 | 50.0 ± 42.4 | +30.0 (on 1 of its seeds) |  |" in table
    assert "| label_then_tokens | 5 | teacher | 1 | 75.0 | +5.0 |  |" in table
    by_seed = seed_table(rows)
    assert summary["dss"]["only_here"] is None  # no predictions given: no per-row counts
    assert by_seed.splitlines()[0] == "| task | student | train size | mode | k | target | seed 0 | seed 1 | seed 2 | seed 3 |"
    assert "| t |  | 10 | dss |  |  | 80.0 |  |  | 20.0 |" in by_seed
    assert "| t |  | 10 | multitask | 5 | teacher | 60.0 | 90.0 | 90.0 |  |" in by_seed


def test_typo_in_a_stage_option_fails_before_any_compute(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir)
    experiment = yaml.safe_load(path.read_text())
    experiment["student"]["train"]["stepz"] = 3
    path.write_text(yaml.safe_dump(experiment))
    assert main(["run", str(path)]) == 2
    assert not (tmp_path / "grid").exists()


def test_smaller_k_reuses_the_largest_extraction(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, top_k=[1, 3], modes=["multitask"], seeds=[0])
    plans = plan(load_experiment(path))
    (keywords,) = [p for p in plans if p.spec.name == "keywords"]
    assert keywords.extractions["teacher"].top_k == 3
    assert sorted((c.k, c.train.top_k) for c in keywords.cells) == [(1.0, 1.0), (3.0, None)]
    assert {c.train.rationales for c in keywords.cells} == {keywords.extractions["teacher"].output}


def test_multitask_kd_cells_learn_from_the_grid_teacher(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, modes=["standard", "multitask_kd"], seeds=[0])
    experiment = yaml.safe_load(path.read_text())
    experiment["teacher"]["finetune"] = {"steps": 2, "batch_size": 4}
    path.write_text(yaml.safe_dump(experiment))
    for task_plan in plan(load_experiment(path)):
        teachers = {cell.mode: cell.train.teacher for cell in task_plan.cells}
        # The fine-tuned teacher, the one whose rationales the cell learns from; none for standard.
        assert teachers == {"standard": None, "multitask_kd": task_plan.finetune.output}
        assert task_plan.extractions["teacher"].teacher == task_plan.finetune.output


def test_only_keeps_the_matching_cells_and_the_work_they_need(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, top_k=[2, 3])
    plans = plan(load_experiment(path))
    kept = select_cells(plans, "mode=multitask seed=1 k=3")
    assert [(c.task, c.mode, c.k, c.seed) for p in kept for c in p.cells] == [
        ("keywords", "multitask", 3.0, 1), ("text", "multitask", 3.0, 1)]
    standard_only = select_cells(plans, "task=text;mode=standard")
    assert [p.spec.name for p in standard_only] == ["text"]  # the other task is not prepared at all
    assert standard_only[0].extractions == {}, "no kept cell reads rationales, so none are extracted"
    assert len(standard_only[0].cells) == 2  # both seeds
    assert select_cells(plans, None) is plans


def test_only_names_a_factor_or_value_the_grid_lacks(tmp_path: Path, t5_dir: Path) -> None:
    plans = plan(load_experiment(grid_yaml(tmp_path, t5_dir, t5_dir)))
    with pytest.raises(UserError, match=r"no cell has seed=7; this grid's values: 0, 1"):
        select_cells(plans, "seed=7")
    with pytest.raises(UserError, match="factor among task, student"):
        select_cells(plans, "modes=standard")


def test_run_with_only_trains_just_those_cells(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir)
    assert main(["run", str(path), "--only", "task=keywords mode=standard seed=0"]) == 0
    cells = [json.loads(p.read_text()) for p in (tmp_path / "grid").rglob("cell.json")]
    assert [(c["task"], c["mode"], c["seed"]) for c in cells] == [("keywords", "standard", 0)]
    assert not list((tmp_path / "grid").rglob("records.jsonl")), "no rationales for a standard-only run"


def test_rows_right_only_here_count_over_the_paired_seeds() -> None:
    def row(mode: str, seed: int, right: set[str]) -> dict:
        return {"task": "t", "size": 4, "mode": mode, "k": None, "target": None, "seed": seed,
                "accuracy": len(right) / 4, "right": frozenset(right)}

    rows = [row("standard", 0, {"a", "b"}), row("standard", 1, {"a"}),
            row("dss", 0, {"b", "c", "d"}), row("dss", 1, {"a", "b"}), row("dss", 2, {"a"})]
    (dss,) = [entry for entry in summarize(rows) if entry["mode"] == "dss"]
    # seed 0: c, d only under dss, a only under standard; seed 1: b only under dss; seed 2 has no standard.
    assert (dss["only_here"], dss["only_standard"]) == (3, 1)
    assert dss["vs_standard"] == pytest.approx(((0.75 - 0.5) + (0.5 - 0.25)) / 2)
    assert "| 3 / 1 |" in results_markdown(summarize(rows), {})


def test_device_flag_overrides_the_yaml_for_every_stage(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, modes=["standard", "multitask_kd"], seeds=[0])
    experiment = yaml.safe_load(path.read_text())
    experiment["teacher"]["finetune"] = {"steps": 2, "batch_size": 4}
    path.write_text(yaml.safe_dump(experiment))
    for task_plan in plan(load_experiment(path, device="cuda")):
        stages = [task_plan.finetune, *task_plan.extractions.values()]
        stages += [config for cell in task_plan.cells for config in (cell.train, cell.evaluate)]
        assert {stage.device for stage in stages} == {"cuda"}
    assert {c.train.device for p in plan(load_experiment(path)) for c in p.cells} == {"cpu"}


def test_only_skips_the_teacher_when_no_kept_cell_reads_it(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, modes=["standard", "multitask_kd"], seeds=[0])
    experiment = yaml.safe_load(path.read_text())
    experiment["teacher"]["finetune"] = {"steps": 2, "batch_size": 4}
    path.write_text(yaml.safe_dump(experiment))
    plans = plan(load_experiment(path))
    standard_only = select_cells(plans, "mode=standard")
    assert all(p.finetune is None and p.teacher_eval == {} and p.extractions == {} for p in standard_only)
    with_teacher = select_cells(plans, "mode=multitask_kd")
    assert all(p.finetune is not None and p.teacher_eval for p in with_teacher)
    assert main(["run", str(path), "--only", "mode=standard task=keywords"]) == 0
    assert not (tmp_path / "grid" / "keywords" / "teacher").exists(), "the teacher was fine-tuned for nothing"
