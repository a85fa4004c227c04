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
