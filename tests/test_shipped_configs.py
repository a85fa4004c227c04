"""Every experiment file the repository ships loads, and plans the grid it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokendistill.grid import plan
from tokendistill.grid_file import load_experiment

CONFIGS = sorted(p for folder in ("paper", "offline", "decisive") for p in (Path(__file__).resolve().parents[1] / "configs" / folder).glob("*.yaml"))


def test_configs_are_shipped() -> None:
    names = {path.relative_to(path.parents[1]).as_posix() for path in CONFIGS}
    assert {f"paper/{task}.yaml" for task in ("cqa", "svamp", "esnli", "anli1")} <= names
    assert any(name.startswith("offline/") for name in names)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.relative_to(path.parents[1]).as_posix())
def test_config_loads_and_plans(path: Path, tmp_path: Path) -> None:
    experiment = load_experiment(path, output=str(tmp_path / "grid"))
    plans = plan(experiment)
    assert plans and all(task_plan.cells for task_plan in plans)
    if path.parent.name == "paper":
        assert experiment.teacher["model"] == "google/flan-t5-xl"
        assert experiment.student["model"] == ["t5-base", "google/flan-t5-small", "google/flan-t5-base"]
        cell = plans[0].cells[0]
        assert (cell.train.learning_rate, cell.train.batch_size, cell.train.steps) == (5e-5, 64, 10_000)
        assert cell.train.max_input_length == 1024 and cell.train.alpha == 0.5
        assert {c.mode for c in plans[0].cells} == {"standard", "multitask", "dss"}
    for task_plan in plans:
        # Nothing of the test split reaches the teacher or the students.
        assert task_plan.spec.test_split not in {c.train.split for c in task_plan.cells}
        if task_plan.finetune is not None:
            assert task_plan.finetune.split != task_plan.spec.test_split
