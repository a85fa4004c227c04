"""The demo end to end, cut to a few steps: every stage runs, the summary and the report are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokendistill.cli import main


@pytest.mark.slow
def test_the_demo_runs_every_stage_and_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "demo"
    assert main(["demo", "--output", str(output), "--seeds", "1", "--train-examples", "16", "--teacher-steps", "2",
                 "--student-steps", "2", "--test-examples", "8", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for stage in ("1/4", "2/4", "3/4", "4/4"):
        assert stage in out
    summary = json.loads((output / "summary.json").read_text())
    assert {"teacher_accuracy", "chance_accuracy"} <= set(summary)
    assert (output / "report.html").is_file() and (output / "students" / "multitask-seed0" / "README.md").is_file()
    assert main(["demo", "--output", str(output)]) == 2  # a used folder needs --overwrite


README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_readmes_demo_figures_are_what_the_demo_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's demo table is the shipped demo's own output (the CPU result is deterministic at its two
    threads): a change that moves a figure fails here until the README says the new one."""
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 5  # header, teacher, its words, two student rows
    readme = README.read_text()
    for line in table:
        assert line in readme, f"README.md does not hold the demo's line {line!r}: run `make demo` and copy it"
