"""The figures of the README and docs/, regenerated from the published runs: every Markdown block between
``<!-- figures: KIND GRID [ROWS] -->`` and ``<!-- /figures -->`` is rewritten from what `tokendistill results`
computes on docs/results/GRID (its committed per-row predictions), so that no figure in the prose can drift from
the run it came from. tests/test_figures.py fails when a committed block is not what this prints.

    python tools/figures.py            # rewrite every block in README.md and docs/*.md
    python tools/figures.py --check    # list the stale blocks, exit 1 if any

Kinds: ``verdict GRID [primary|baseline|all]`` (the seed-level comparisons: the declared ones; those with the
baseline mode, declared ones first; or all), ``claims GRID`` (what the seeds allow, in words, as results.md says it)
and ``cells GRID`` (each cell's accuracy over its seeds). The demo's
table is the demo's own output, checked by tests/test_demo.py.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from functools import cache
from pathlib import Path

from tokendistill.artefacts import RESULTS_CSV, RESULTS_MD, VERDICT_CSV
from tokendistill.cells import BASELINE_MODE
from tokendistill.results import CLAIMS_HEADING, render_results

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "results"
BLOCK = re.compile(r"(?P<open><!-- figures: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(?P<close><!-- /figures -->)", re.S)


@cache
def _rendered(grid: str) -> dict[str, str]:
    folder = PUBLISHED / grid
    if not folder.is_dir():
        raise SystemExit(f"figures: docs/results/{grid} does not exist")
    return render_results(folder)


def _rows(grid: str, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_rendered(grid)[name])))


def _results_md(grid: str) -> str:
    return _rendered(grid)[RESULTS_MD]


def _points(value: str, signed: bool = True) -> str:
    return "" if value == "" else f"{100 * float(value):{'+' if signed else ''}.1f}"


def _interval(low: str, high: str) -> str:
    return "" if low == "" else f"[{_points(low)}, {_points(high)}]"


def verdict(grid: str, which: str = "primary") -> str:
    rows = _rows(grid, VERDICT_CSV)
    if which == "primary":
        rows = [row for row in rows if row["primary"] == "True"]
    elif which == "baseline":
        rows = [row for row in rows if row["primary"] == "True" or row["comparison"].endswith(f" vs {BASELINE_MODE}")]
    lines = ["| comparison | seeds | difference (points) | over seeds: 95% interval | p (Holm-adjusted if not declared) "
             "| claim | seeds to detect the declared effect | over rows: 95% interval (these students) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        claim = row["claim"] or ("none: one seed" if row["seeds"] == "1" else "")
        mark = " (declared)" if row["primary"] == "True" else ""
        p_value = row["p"] if row["primary"] == "True" else row["p_holm"]
        lines.append(f"| {row['comparison']}{mark} | {row['seeds']} | {_points(row['difference'])} | "
                     f"{_interval(row['low'], row['high'])} | {'' if p_value == '' else f'{float(p_value):.2g}'} | "
                     f"{claim} | {row['seeds_needed']} | "
                     f"{_interval(row['rows_low'], row['rows_high'])} |")
    return "\n".join(lines) + "\n"


def claims(grid: str) -> str:
    """results.md's claims section, as `tokendistill results` writes it (the heading, a blank line, the list)."""
    text = _results_md(grid)
    if CLAIMS_HEADING not in text:
        return ""
    start = text.index(CLAIMS_HEADING)
    return text[start:text.index("\n\n", text.index("\n\n", start) + 2)] + "\n"


def cells(grid: str) -> str:
    lines = ["| cell | layout | seeds | accuracy (%) |", "|---|---|---|---|"]
    for row in _rows(grid, RESULTS_CSV):
        name = row["mode"] + (f" {row['method']}" if row["method"] else "") + (f", n={row['size']}"
                                                                                if row["size"] != "250" else "")
        spread = "" if row["sd"] == "" else f" ± {_points(row['sd'], signed=False)}"
        lines.append(f"| {name} | {row['marker'] or 'paper'} | {row['seeds']} | "
                     f"{_points(row['mean'], signed=False)}{spread} |")
    return "\n".join(lines) + "\n"


KINDS = {"verdict": verdict, "claims": claims, "cells": cells}


def render(spec: str) -> str:
    kind, *arguments = spec.split()
    if kind not in KINDS:
        raise SystemExit(f"figures: unknown kind {kind!r} in <!-- figures: {spec} -->; kinds: {', '.join(KINDS)}")
    return KINDS[kind](*arguments)


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda match: match["open"] + render(match["spec"]) + match["close"], text)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def stale() -> list[str]:
    """The documents whose figure blocks are not what the published runs give."""
    return [str(path.relative_to(ROOT)) for path in documents() if regenerate(path.read_text()) != path.read_text()]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        found = stale()
        for name in found:
            print(f"{name}: its figures are not what docs/results gives; run python tools/figures.py")
        return 1 if found else 0
    for path in documents():
        text = path.read_text()
        if (new := regenerate(text)) != text:
            path.write_text(new)
            print(f"rewrote the figures of {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
