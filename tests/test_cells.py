"""A cell's factors are declared once (cells.DECLARED): its key, the table's columns and its folder name come from
there, and the folder names are those every published grid wrote."""

from pathlib import Path

import pytest

from tokendistill.cells import FACTORS, Naming, cell_folder
from tokendistill.experiment import load_experiment
from tokendistill.folders import read_json_or_empty
from tokendistill.grid import plan

ROOT = Path(__file__).resolve().parents[1]
KEY = {"task": "esnli", "student": "smollm2", "size": 250, "mode": "multitask", "method": "saliency", "k": 5.0,
       "target": "teacher", "marker": None, "seed": 3}


@pytest.mark.parametrize(("changes", "naming", "expected"), [
    ({}, Naming("saliency"), "esnli/n250/multitask-k5-teacher/seed3"),
    ({"method": "random_matched", "marker": "shared_prompt"}, Naming("saliency"),
     "esnli/n250/multitask-k5-teacher-random_matched-shared_prompt/seed3"),
    ({"mode": "standard", "method": None, "k": None, "target": None}, Naming("saliency"), "esnli/n250/standard/seed3"),
    ({"k": 0.25}, Naming("saliency", several_students=True), "esnli/n250/smollm2/multitask-k0.25-teacher/seed3"),
])
def test_a_cells_folder_is_named_from_its_factors(changes: dict, naming: Naming, expected: str) -> None:
    assert cell_folder(Path("grid"), {**KEY, **changes}, naming) == Path("grid") / expected


def test_the_table_columns_are_the_declared_factors() -> None:
    assert FACTORS == ("task", "student", "size", "mode", "method", "k", "target", "marker")


def test_every_published_cells_folder_is_named_from_its_own_record() -> None:
    for grid in (ROOT / "docs" / "results").iterdir():
        for record in grid.rglob("cell.json"):
            key = read_json_or_empty(record)
            assert cell_folder(grid, key, Naming(main_method="saliency")) == record.parent, record


def test_the_published_grids_plan_the_folders_they_wrote() -> None:
    grid = ROOT / "docs" / "results" / "decisive-esnli-cpu"  # three grids in one folder, each plan kept beside it
    cells = [cell for yaml in sorted(grid.glob("experiment*.yaml"))
             for task_plan in plan(load_experiment(yaml, str(grid), "cpu")) for cell in task_plan.cells]
    planned = {Path(cell.train.output).parent: cell for cell in cells}
    written = [path.parent for path in grid.rglob("cell.json") if path.parent in planned]
    assert len(written) >= 20
    for folder in written:
        # A factor a grid's version did not yet have is recorded as absent: it is None.
        record = {**dict.fromkeys(FACTORS), **read_json_or_empty(folder / "cell.json")}
        assert record.items() >= planned[folder].key.items()
