"""Copy what a grid's results rest on into the repository (docs/results/NAME): every finished cell's factors,
metrics and per-row predictions, the teacher checks and rationale manifests, and the tables, so that
`tokendistill results docs/results/NAME` recomputes the table (intervals included) from committed files.
Weights, checkpoints and records stay behind.

    python tools/publish_grid.py runs/decisive-esnli-cpu docs/results/decisive-esnli-cpu
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tokendistill.artefacts import (
    CELL_INFO,
    CONFIG,
    GRID_PLAN,
    MANIFEST,
    METRICS,
    PREDICTIONS,
    RESULTS_CSV,
    RESULTS_MD,
    TEACHER_CHECK,
    TEACHER_CHECK_PREDICTIONS,
    TRAIN_LOG,
    VERDICT_CSV,
    is_grid_file,
)

# Each cell's resolved configs and the teacher checks' per-row answers too: every figure can be recomputed.
KEPT = {CELL_INFO, METRICS, PREDICTIONS, TEACHER_CHECK, TEACHER_CHECK_PREDICTIONS, MANIFEST, RESULTS_MD, RESULTS_CSV,
        VERDICT_CSV, GRID_PLAN, TRAIN_LOG, CONFIG}


def publish(grid: Path, destination: Path) -> list[Path]:
    copied = []
    for path in sorted(grid.rglob("*")):
        kept = path.name in KEPT or (path.parent == grid and is_grid_file(path.name, GRID_PLAN))
        if path.is_file() and kept and "checkpoint" not in path.parts:
            target = destination / path.relative_to(grid)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(target)
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(f"{len(publish(Path(sys.argv[1]), Path(sys.argv[2])))} files copied")
