"""The grid: an experiment YAML as cells, every stage config built and checked before any compute."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import grid_yaml
from tokendistill.cli import main
from tokendistill.errors import UserError
from tokendistill.grid import plan, select_cells
from tokendistill.grid_file import load_experiment


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
    assert keywords.extractions["saliency", "teacher"].top_k == 3
    assert sorted((c.k, c.train.top_k) for c in keywords.cells) == [(1.0, 1.0), (3.0, None)]
    assert {c.train.rationales for c in keywords.cells} == {keywords.extractions["saliency", "teacher"].output}


def test_multitask_kd_cells_learn_from_the_grid_teacher(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, modes=["standard", "multitask_kd"], seeds=[0])
    experiment = yaml.safe_load(path.read_text())
    experiment["teacher"]["finetune"] = {"steps": 2, "batch_size": 4}
    path.write_text(yaml.safe_dump(experiment))
    for task_plan in plan(load_experiment(path)):
        teachers = {cell.mode: cell.train.other_models().get("teacher") for cell in task_plan.cells}
        # The fine-tuned teacher, the one whose rationales the cell learns from; none for standard (whose options
        # have no teacher at all: a mode's options are its own).
        assert teachers == {"standard": None, "multitask_kd": task_plan.finetune.output}
        assert task_plan.extractions["saliency", "teacher"].teacher == task_plan.finetune.output


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


def test_an_unknown_control_method_or_competence_key_fails_at_once(tmp_path: Path, t5_dir: Path) -> None:
    with pytest.raises(UserError, match="unknown attribution method 'randm'|randm"):
        load_experiment(grid_yaml(tmp_path, t5_dir, t5_dir, controls=["randm"]))
    with pytest.raises(UserError, match="competence.on_failure should be warn or stop"):
        load_experiment(grid_yaml(tmp_path, t5_dir, t5_dir, competence={"on_failure": "maybe"}))
    with pytest.raises(UserError, match="competence.student_margin should be a share between 0 and 1"):
        load_experiment(grid_yaml(tmp_path, t5_dir, t5_dir, competence={"student_margin": 15}))


def test_a_modes_own_training_option_in_a_grid_reaches_its_cells_only(tmp_path: Path, t5_dir: Path) -> None:
    path = grid_yaml(tmp_path, t5_dir, t5_dir, modes=["standard", "kd"], seeds=[0])
    experiment = yaml.safe_load(path.read_text())
    experiment["student"]["train"]["kd_weight"] = 2.0
    path.write_text(yaml.safe_dump(experiment))
    cells = [cell for task_plan in plan(load_experiment(path)) for cell in task_plan.cells]
    weights = {cell.mode: getattr(cell.train, "kd_weight", None) for cell in cells}
    assert weights == {"standard": None, "kd": 2.0}
    experiment["student"]["train"]["no_such_option"] = 1
    path.write_text(yaml.safe_dump(experiment))
    with pytest.raises(UserError, match="unknown option"):
        plan(load_experiment(path))
