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


def test_the_cells_table_claims_what_the_verdict_claims() -> None:
    """results.csv's claim columns are verdict.csv's: a secondary comparison whose seed-level interval excludes 0
    but whose Holm-adjusted p does not pass (kd vs standard here) reads inconclusive in both."""
    from tokendistill.results import collect, declarations, summarize, verdict

    grid = PUBLISHED / "decisive-esnli-cpu"
    rows, teachers = collect(grid)
    effect, primary = declarations(grid)
    summary = summarize(rows, teachers, effect)
    claims = {(row["task"], row["comparison"]): row["claim"] for row in verdict(summary, rows, effect, primary)}
    checked = 0
    for entry in summary:
        for name in ("standard", "control", "format"):
            if comparison := entry.get(f"vs_{name}_comparison"):
                assert entry[f"vs_{name}_claim"] == claims[(entry["task"], comparison)], comparison
                checked += 1
    assert checked >= 20
    kd = next(entry for entry in summary if entry["mode"] == "kd")
    assert kd["vs_standard_re_low"] > 0 and kd["vs_standard_claim"] == "inconclusive"
