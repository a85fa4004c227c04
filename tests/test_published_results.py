"""Every published results file is what `tokendistill results` computes from the committed per-row predictions:
a figure cannot drift from the run it came from."""

from pathlib import Path

import pytest

from tokendistill.results import render_results

PUBLISHED = Path(__file__).resolve().parents[1] / "docs" / "results"
# The grids published with their per-row predictions (the earlier ones keep their tables only).
WITH_PREDICTIONS = sorted(path.parent for path in PUBLISHED.glob("*/verdict.csv"))


@pytest.mark.parametrize("grid", WITH_PREDICTIONS, ids=lambda path: path.name)
def test_a_published_grids_results_are_recomputed_exactly(grid: Path) -> None:
    for name, text in render_results(grid).items():
        assert (grid / name).read_bytes().decode() == text, f"{grid.name}/{name} is not what `tokendistill results` computes"


def test_the_verdict_grid_is_published_with_its_predictions() -> None:
    assert [path.name for path in WITH_PREDICTIONS] == ["decisive-esnli-cpu"]
