"""A results table's figures: each cell over seeds, its paired comparisons (with standard, the control words and the
paper's layout) at the level of test rows and of seeds, and the verdict of every comparison, the declared ones
first."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from tokendistill.cells import BASELINE_MODE
from tokendistill.results.discovery import CONTROL_METHODS, FACTORS
from tokendistill.statistics import (
    claim,
    holm,
    paired_difference,
    random_effects,
    seed_interval,
    seed_variances,
)


def _group(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(factor) for factor in FACTORS)


def teacher_accuracy(teacher: dict[str, Any] | None) -> float | None:
    return None if not teacher else teacher["accuracy"][teacher["best"]]


def summarize(rows: list[dict[str, Any]], teachers: dict[str, dict[str, Any]] | None = None,
              effect: float | None = None, keep_rows: bool = False) -> list[dict[str, Any]]:
    """Mean ± sd over seeds per cell (every factor but the seed), and the paired differences to `standard`, to the
    control words and to the paper's layout of the same task, student and size: over test rows (conditional on the
    trained students) and over seeds (random effects: the level a claim about the method rests on).

    A difference is taken over the seeds both cells have, so that a grid cut short, where modes have run
    different seeds, compares like with like. The sd is None for a single seed (no spread was measured).
    ``effect``: the effect of interest (a share), which the seeds needed and the claims are reckoned against.
    ``keep_rows``: keep each cell's per-seed rows (private fields) for further comparisons.
    """
    teachers = teachers or {}
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_group(row)].append(row)
    summary = []
    for key, members in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        by_seed = {row["seed"]: row for row in members}
        values = [row["accuracy"] for row in by_seed.values()]
        summary.append({
            **dict(zip(FACTORS, key)), "seeds": len(values),
            "test_rows": max((row.get("examples") or 0 for row in members), default=0) or None,
            "teacher_accuracy": teacher_accuracy(teachers.get(key[0])),
            "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "_accuracy": {seed: row["accuracy"] for seed, row in by_seed.items()},
            "_right": {seed: row["right"] for seed, row in by_seed.items() if row.get("right") is not None},
            "_ids": frozenset().union(*(row.get("ids") or frozenset() for row in members)),
        })
    for entry in summary:
        for name, base in _references(entry, summary).items():
            for field_name, value in compare(entry, base, effect).items():
                entry[f"vs_{name}{field_name}"] = value
            # The verdict's name for this comparison: its claim (Holm-adjusted if secondary) is the verdict's.
            entry[f"vs_{name}_comparison"] = comparison_name(entry, base) if base else None
            if name == BASELINE_MODE:
                entry["only_here"], entry["only_standard"] = entry.pop("vs_standard_only_here"), entry.pop(
                    "vs_standard_only_there")
            else:
                del entry[f"vs_{name}_only_here"], entry[f"vs_{name}_only_there"]
    if not keep_rows:
        for entry in summary:
            del entry["_accuracy"], entry["_right"], entry["_ids"]
            for name in COMPARISONS:
                del entry[f"vs_{name}_level"]
    return summary


# The comparisons each cell of the table makes, by name (the columns vs_<name>_...): with the baseline mode's cell
# of its setting, with its control, and with its own cell in the paper's layout.
COMPARISONS = (BASELINE_MODE, "control", "format")


def _same_setting(entry: dict[str, Any], other: dict[str, Any]) -> bool:
    """Two cells that may be compared: the same task, student and size (and k and target where both have them)."""
    return (all(other[f] == entry[f] for f in ("task", "student", "size"))
            and all(other[f] == entry[f] or other[f] is None or entry[f] is None for f in ("k", "target")))


def _reference(entry: dict[str, Any], summary: list[dict[str, Any]], wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The cell of ``entry``'s task, student and size with the wanted factors; of several, the one of its k and
    target."""
    same = [other for other in summary if other is not entry
            and all(other[f] == entry[f] for f in ("task", "student", "size"))
            and all(other[f] == v for f, v in wanted.items())]
    exact = [other for other in same if other["k"] == entry["k"] and other["target"] == entry["target"]]
    if len(exact) == 1:
        return exact[0]
    return same[0] if not exact and len(same) == 1 else None


def _controls(entry: dict[str, Any], summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The control cells of ``entry`` (none for standard or a control), the closer control first: of the same mode
    where the grid has one (multitask_kd's own), else multitask's, in the entry's layout."""
    if entry["mode"] == BASELINE_MODE or entry["method"] in CONTROL_METHODS:
        return []
    found = []
    for method in CONTROL_METHODS:
        control = (_reference(entry, summary, {"mode": entry["mode"], "method": method, "marker": entry["marker"]})
                   or _reference(entry, summary, {"method": method, "marker": entry["marker"]}))
        if control is not None and control not in found:
            found.append(control)
    return found


def _references(entry: dict[str, Any], summary: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The cells ``entry`` is compared with in the cells' table, by comparison name (None: no such cell)."""
    return {
        BASELINE_MODE: None if entry["mode"] == BASELINE_MODE else _reference(entry, summary, {"mode": BASELINE_MODE}),
        "control": next(iter(_controls(entry, summary)), None),
        # The same cell in the paper's layout: what a different --task-marker changes.
        "format": None if entry["marker"] is None else _reference(
            entry, summary, {"mode": entry["mode"], "method": entry["method"], "marker": None}),
    }


def compare(entry: dict[str, Any], base: dict[str, Any] | None, effect: float | None) -> dict[str, Any]:
    """``entry`` minus ``base`` over the seeds both have: the mean of the seeds' accuracy differences, the rows'
    interval and power (conditional on these students), each seed's difference, the seeds' t-interval, the random
    effects over seeds (interval, between-seed sd, heterogeneity, p, seeds needed) and the claim it allows."""
    shared = sorted(set(entry["_accuracy"]) & set(base["_accuracy"])) if base else []
    with_rows = bool(shared) and all(s in entry["_right"] and s in base["_right"] for s in shared)
    here = {s: entry["_right"][s] for s in shared} if with_rows else {}
    there = {s: base["_right"][s] for s in shared} if with_rows and base else {}
    ids = entry["_ids"] & base["_ids"] if base else frozenset()
    difference = paired_difference(here, there, ids) if with_rows else None
    per_seed = [entry["_accuracy"][s] - base["_accuracy"][s] for s in shared] if base else []
    over_seeds = seed_interval(per_seed)
    # The rows' own variance of each seed's difference: random effects need it, and a table of accuracies lacks it.
    level = random_effects(list(seed_variances(here, there, ids).values()), effect) if with_rows else None
    fields: dict[str, Any] = {
        # The mean difference of the seeds' accuracies (the pooled rows' mean when the test rows agree).
        "": statistics.fmean(per_seed) if per_seed else None,
        "_seeds": len(shared) if shared else None,
        "_per_seed": per_seed,
        "_seed_low": over_seeds[0] if over_seeds else None, "_seed_high": over_seeds[1] if over_seeds else None,
    }
    for name in ("low", "high", "detectable", "only_here", "only_there"):
        fields[f"_{name}"] = None if difference is None else getattr(difference, name)
    for name in ("low", "high", "tau", "tau_low", "tau_high", "i2", "q", "p", "seeds_needed"):
        fields[f"_re_{name}"] = None if level is None else getattr(level, name)
    fields["_claim"] = claim(level, effect)
    fields["_level"] = level
    return fields


def mode_text(entry: dict[str, Any]) -> str:
    return str(entry["mode"]) + (f" ({entry['marker']})" if entry.get("marker") else "")


def cell_label(entry: dict[str, Any]) -> str:
    """A cell as a comparison names it: its mode (and layout), then the method of its words, if any."""
    return mode_text(entry) + (f" {entry['method']}" if entry.get("method") else "")


def comparison_name(entry: dict[str, Any], base: dict[str, Any]) -> str:
    """A comparison as the verdict, the table's claim columns and a grid's ``primary`` list name it."""
    return f"{cell_label(entry)} vs {cell_label(base)}"


def verdict(summary: list[dict[str, Any]], rows: list[dict[str, Any]], effect: float | None,
            primary: Sequence[str]) -> list[dict[str, Any]]:
    """Every comparison at the seed level: the declared primary ones first, then each cell's comparisons with
    standard, the control and the paper's layout (secondary: Holm-adjusted p-values over all of them), each with
    the claim it allows against ``effect``. The claim columns of ``summary`` (the table's) are set to these."""
    work = summarize(rows, effect=effect, keep_rows=True) if rows else []
    found = _primary_rows(work, primary, effect)
    for entry in work:
        # Every control, not only the closest the cells' table shows (a grid with both keeps both comparisons).
        for base in [*_references(entry, work).values(), *_controls(entry, work)[1:]]:
            pair = comparison_name(entry, base) if base else None
            if base is None or any(row["comparison"] == pair and row["task"] == entry["task"] for row in found):
                continue  # none, or declared primary
            found.append({**_verdict_row(entry, base, compare(entry, base, effect)), "primary": False})
    found = [row for row in found if row["seeds"]]
    secondary = [row for row in found if not row["primary"] and row["p"] is not None]
    for row, adjusted in zip(secondary, holm([row["p"] for row in secondary])):
        row["p_holm"] = adjusted
        row["claim"] = claim(row.pop("_level"), effect, adjusted)
    for row in found:
        row.pop("_level", None)
    # One owner for a claim: the table's claim columns say what the verdict says, Holm's correction included.
    claims = {(row["task"], row["student"], row["size"], row["comparison"]): row["claim"] for row in found}
    for entry in summary:
        for name in COMPARISONS:
            key = (entry["task"], entry["student"], entry["size"], entry.get(f"vs_{name}_comparison"))
            if key in claims:
                entry[f"vs_{name}_claim"] = claims[key]
    return found


def _primary_rows(work: list[dict[str, Any]], primary: Sequence[str], effect: float | None) -> list[dict[str, Any]]:
    """The declared comparisons, each between cells of one setting (task, student, size; k and target)."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in work:
        by_label[cell_label(entry)].append(entry)
    found = []
    for text in primary:
        left, _, right = text.partition(" vs ")
        pairs = [(entry, base) for entry in by_label.get(left.strip(), []) for base in by_label.get(right.strip(), [])
                 if _same_setting(entry, base)]
        found += [{**_verdict_row(entry, base, compare(entry, base, effect)), "primary": True} for entry, base in pairs]
    return found


def _verdict_row(entry: dict[str, Any], base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {"task": entry["task"], "student": entry["student"], "size": entry["size"],
            "comparison": comparison_name(entry, base), "seeds": fields["_seeds"],
            "difference": fields[""], "per_seed": fields["_per_seed"],
            **{name: fields[f"_re_{name}"]
               for name in ("low", "high", "tau", "tau_low", "tau_high", "i2", "q", "p", "seeds_needed")},
            "rows_low": fields["_low"], "rows_high": fields["_high"], "p_holm": None, "claim": fields["_claim"],
            "_level": fields["_level"]}


