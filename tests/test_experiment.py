"""The experiment runner: a small grid end to end, resumed for free, and its results table."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import grid_yaml
from tokendistill.cli import main
from tokendistill.errors import UserError
from tokendistill.grid import plan, select_cells
from tokendistill.grid_file import load_experiment


@pytest.mark.slow
def test_grid_runs_every_cell_and_a_rerun_recomputes_nothing(tmp_path: Path, t5_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir)
    assert main(["run", str(path)]) == 0
    grid = tmp_path / "grid"
    cells = sorted(grid.rglob("cell.json"))
    assert len(cells) == 2 * 2 * 2  # tasks x modes x seeds
    # The teacher's rationales are computed once per task and shared by every multitask cell.
    assert sorted(p.parent.name for p in grid.rglob("records.jsonl")) == ["rationales-teacher"] * 2
    table, by_seed = (grid / "results.md").read_text().split("by seed:")
    table = table.split("\n\n")[0]  # the cells' table (the verdict's follows it)
    assert table.count("| keywords |") == 2 and table.count("| text |") == 2  # mean over seeds per mode
    assert "Every comparison at the level of training seeds" in (grid / "results.md").read_text()
    assert by_seed.count("| keywords |") == 2 and "| seed 0 | seed 1 |" in by_seed
    csv_lines = (grid / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("task,student,size,mode") and len(csv_lines) == 5

    stamps = {p: p.stat().st_mtime_ns for p in grid.rglob("*") if p.suffix in (".safetensors", ".jsonl")}
    assert main(["run", str(path)]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "a finished grid is not recomputed"
    capsys.readouterr()
    assert main(["results", str(grid)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith((grid / "results.md").read_text())
    assert printed.rstrip().endswith(f"results: wrote results.md, results.csv and verdict.csv in {grid}")
    assert main(["report", str(grid)]) == 0
    page = (grid / "report.html").read_text()
    assert page.count("<td>multitask</td>") == 2 and page.count("<td>standard</td>") == 2  # one row per task


def test_run_with_only_trains_just_those_cells(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir)
    assert main(["run", str(path), "--only", "task=keywords mode=standard seed=0"]) == 0
    cells = [json.loads(p.read_text()) for p in (tmp_path / "grid").rglob("cell.json")]
    assert [(c["task"], c["mode"], c["seed"]) for c in cells] == [("keywords", "standard", 0)]
    assert not list((tmp_path / "grid").rglob("records.jsonl")), "no rationales for a standard-only run"


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


def test_controls_train_multitask_on_random_words(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, controls=["random"], seeds=[0])
    (keywords, _) = plan(load_experiment(path))
    assert set(keywords.extractions) == {("saliency", "teacher"), ("random", "teacher")}
    assert Path(keywords.extractions["random", "teacher"].output).name == "rationales-teacher-random"
    assert keywords.extractions["random", "teacher"].method == "random"
    folders = {(c.mode, c.method): Path(c.train.output).parent.parent.name for c in keywords.cells}
    assert folders == {("standard", None): "standard", ("multitask", "saliency"): "multitask-k2-teacher",
                       ("multitask", "random"): "multitask-k2-teacher-random"}
    assert main(["run", str(path), "--only", "task=keywords"]) == 0
    with (tmp_path / "grid" / "results.csv").open() as handle:
        results = {(row["mode"], row["method"]): row for row in csv.DictReader(handle)}
    assert set(results) == {("standard", ""), ("multitask", "saliency"), ("multitask", "random")}
    assert results["multitask", "saliency"]["vs_control"] != "" and results["multitask", "random"]["vs_control"] == ""
    assert results["standard", ""]["test_rows"] == "12" and results["standard", ""]["teacher_accuracy"] != ""
    assert select_cells(plan(load_experiment(path)), "method=random")[0].extractions.keys() == {("random", "teacher")}


def test_a_grid_whose_setting_cannot_decide_stops_or_warns(tmp_path: Path, t5_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # A random tiny teacher is near chance on keywords: the check, on validation rows, stops the grid before any
    # rationale is made and before any test row is scored.
    tasks = [{"name": "keywords", "train_sizes": [16], "test_limit": 8}]
    path = grid_yaml(tmp_path, t5_dir, t5_dir, tasks=tasks, seeds=[0], competence={})  # the default: stop
    assert main(["run", str(path)]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "competence" in line]
    assert len(error) == 1 and "competence check: the teacher reaches" in error[0]  # one line (the bars aside)
    check = json.loads((tmp_path / "grid" / "keywords" / "teacher-eval-valid" / "teacher_eval.json").read_text())
    assert check["split"] == "train[16:516]" and check["examples"] == 500  # rows after the student's 16
    assert not (tmp_path / "grid" / "keywords" / "teacher-eval").exists()  # the teacher's test check
    assert not list((tmp_path / "grid").rglob("predictions.jsonl"))  # nor any student's
    assert not list((tmp_path / "grid").rglob("records.jsonl")) and not list((tmp_path / "grid").rglob("cell.json"))
    path = grid_yaml(tmp_path, t5_dir, t5_dir, tasks=tasks, seeds=[0], competence={"on_failure": "warn"})
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "WARNING competence check: the teacher reaches" in out
    assert "WARNING competence check: the standard student reaches" in out
    assert len(list((tmp_path / "grid").rglob("cell.json"))) == 2
    competence = json.loads(next((tmp_path / "grid").rglob("eval-valid/metrics.json")).read_text())
    assert competence["split"] == "train[16:516]" and competence["mode"] == "standard"


@pytest.mark.slow
def test_report_table_equals_the_runners_for_every_grid_factor(tmp_path: Path, t5_dir: Path) -> None:
    tasks = [{"name": "keywords", "train_sizes": [12, 16], "test_limit": 8}]
    path = grid_yaml(tmp_path, t5_dir, t5_dir, tasks=tasks, top_k=[1, 2], targets=["teacher", "gold"], seeds=[0, 1])
    assert main(["run", str(path)]) == 0
    grid = tmp_path / "grid"
    markdown = (grid / "results.md").read_text().split("\n\n")[0].splitlines()[2:]
    runner_rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown]
    assert len(runner_rows) == 2 * (1 + 2 * 2)  # sizes x (standard + k x targets), each over two seeds
    assert {row[8] for row in runner_rows} == {"2"}
    assert main(["report", str(grid)]) == 0
    page = (grid / "report.html").read_text()
    results = page.split("<h2 id='results'>")[1].split("</table>")[0]
    report_rows = [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
                   for row in re.findall(r"<tr>(.*?)</tr>", results) if "<td" in row]
    assert report_rows == runner_rows


def test_a_list_of_task_markers_pairs_each_layout_with_the_papers(tmp_path: Path, llama_dir: Path) -> None:
    path = grid_yaml(tmp_path, llama_dir, llama_dir, seeds=[0])
    experiment = yaml.safe_load(path.read_text())
    experiment["student"]["train"]["task_marker"] = ["encoder", "shared_prompt"]
    path.write_text(yaml.safe_dump(experiment))
    (keywords, _) = plan(load_experiment(path))
    folders = {(c.mode, c.marker): Path(c.train.output).parent.parent.name for c in keywords.cells}
    # The paper's layout keeps its folder name (grids begun before the factor resume); standard has one layout.
    assert folders == {("standard", None): "standard", ("multitask", None): "multitask-k2-teacher",
                       ("multitask", "shared_prompt"): "multitask-k2-teacher-shared_prompt"}
    assert {c.train.task_marker for c in keywords.cells if c.mode == "multitask"} == {"encoder", "shared_prompt"}
    assert main(["run", str(path), "--only", "task=keywords"]) == 0
    with (tmp_path / "grid" / "results.csv").open() as handle:
        results = {(row["mode"], row["marker"]): row for row in csv.DictReader(handle)}
    assert set(results) == {("standard", ""), ("multitask", ""), ("multitask", "shared_prompt")}
    assert results["multitask", "shared_prompt"]["vs_format"] != "" and results["multitask", ""]["vs_format"] == ""
    assert results["multitask", "shared_prompt"]["vs_standard"] != ""
    table = (tmp_path / "grid" / "results.md").read_text()
    assert "vs paper format" in table and "| multitask (shared_prompt) |" in table
    # A second YAML may write into the same folder (its finished cells resume) without overwriting the first's plan.
    second = tmp_path / "format.yaml"
    second.write_text(yaml.safe_dump({**experiment, "modes": ["multitask"]}))
    assert main(["run", str(second), "--only", "task=keywords"]) == 0
    grid = tmp_path / "grid"
    assert (grid / "experiment.yaml").read_text().startswith(f"# tokendistill run {path.resolve()}\n")
    assert (grid / "experiment-format.yaml").read_text().startswith(f"# tokendistill run {second.resolve()}\n")
    assert (grid / "run.yaml").exists() and (grid / "run-format.yaml").exists()
    experiment["student"]["train"]["task_marker"] = ["shared_prompt", "shared_prompt"]
    path.write_text(yaml.safe_dump(experiment))
    with pytest.raises(UserError, match="a list of distinct ones"):
        load_experiment(path)


def test_a_grid_without_a_marker_list_keeps_its_table() -> None:
    from tokendistill.results import FORMAT_HEADER, TABLE_HEADERS, table

    summary = [{"task": "t", "student": "s", "size": 4, "mode": "standard", "method": None, "k": None,
                "target": None, "marker": None, "seeds": 1, "test_rows": 2, "mean": 0.5, "sd": None,
                **{f"vs_{name}{part}": None for name in ("standard", "control", "format")
                   for part in ("", "_low", "_high", "_detectable", "_seeds")}}]
    headers, rows = table(summary, {})
    assert headers == list(TABLE_HEADERS) and FORMAT_HEADER not in headers and len(rows[0]) == len(headers)
