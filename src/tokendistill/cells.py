"""A grid cell's factors, declared once: the order of the results table's columns, the keys of a cell's record
(cell.json), the clauses `run --only` takes, and each factor's part of the cell's folder name all come from
``DECLARED``. Folder names keep the spelling grids wrote before a factor existed (an absent factor adds nothing),
so that a grid resumes across versions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokendistill.student import BASELINE_MODE, TaskMarker

__all__ = ["BASELINE_MODE", "DECLARED", "FACTORS", "SEED", "Factor", "Naming", "cell_folder", "marker_factor"]


@dataclass(frozen=True)
class Naming:
    """What a factor's folder part depends on beyond its value: the grid's main attribution method (its words
    carry no method suffix) and whether the grid trains several students (then each has a folder)."""

    main_method: str | None = None
    several_students: bool = False


@dataclass(frozen=True)
class Factor:
    name: str
    # Where it is named: (folder level, position within the level's name); the levels are
    # task / n{size} / [student /] mode-k{k}-target-method-marker / seed{seed}, as grids have always spelled them.
    place: tuple[int, int]
    part: Callable[[Any, Naming], str]  # its part of that level's name ("": none)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name)


# In the table's order; ``place`` gives the folder name.
DECLARED: tuple[Factor, ...] = (
    Factor("task", (0, 0), lambda value, _: str(value)),
    Factor("student", (2, 0), lambda value, naming: _slug(str(value)) if naming.several_students else ""),
    Factor("size", (1, 0), lambda value, _: f"n{value}"),
    Factor("mode", (3, 0), lambda value, _: str(value)),
    Factor("method", (3, 3), lambda value, naming: f"-{value}" if value and value != naming.main_method else ""),
    Factor("k", (3, 1), lambda value, _: "" if value is None else f"-k{value:g}"),
    Factor("target", (3, 2), lambda value, _: f"-{value}" if value else ""),
    Factor("marker", (3, 4), lambda value, _: f"-{value}" if value else ""),
)
SEED = Factor("seed", (4, 0), lambda value, _: f"seed{value}")
# Every factor a cell can differ in besides its seed: cells that share all of them are averaged over seeds.
FACTORS = tuple(factor.name for factor in DECLARED)


def cell_folder(root: Path, key: Mapping[str, Any], naming: Naming) -> Path:
    """The folder of the cell with factors ``key`` (and its seed) under the grid folder ``root``."""
    levels: dict[int, list[tuple[int, str]]] = {}
    for factor in (*DECLARED, SEED):
        level, position = factor.place
        levels.setdefault(level, []).append((position, factor.part(key.get(factor.name), naming)))
    names = ("".join(text for _, text in sorted(levels[level])) for level in sorted(levels))
    return root.joinpath(*(name for name in names if name))


def marker_factor(task_marker: Any) -> str | None:
    """A cell's `marker`: its multitask rows' layout (--task-marker) where it is not the paper's (None: the paper's,
    `predict:` / `explain:` before the input, two rows), so that folders written before the factor keep their key."""
    return None if task_marker is None or TaskMarker.of(task_marker).is_papers else str(task_marker)
