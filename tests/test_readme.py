"""The README's quickstart runs as written, read from the README itself, with tiny models in place of real ones."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tokendistill.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> list[str]:
    section = README.read_text().split("## Your own data in five commands")[1]
    return section.split("```bash\n")[1].split("```")[0].strip().splitlines()


@pytest.mark.slow
def test_the_readmes_own_data_quickstart_runs_as_written(tmp_path: Path, llama_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    lines = quickstart()
    assert lines[0].startswith('D="') and len(lines) == 6  # the data options, then five commands
    data_options = shlex.split(lines[0].partition("=")[2])[0]
    rows = [f"review {i}: {'loved it and it works well' if i % 2 else 'broke at once and awful'},"
            f"{'positive' if i % 2 else 'negative'}" for i in range(40)]
    (tmp_path / "reviews.csv").write_text("review,sentiment\n" + "\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    for line in lines[1:]:
        line = re.sub(r"HuggingFaceTB/SmolLM2-\d+M(-Instruct)?", str(llama_dir), line)
        line = re.sub(r"--steps \d+", "--steps 2", line).replace("$D", data_options)
        words = shlex.split(line)
        assert words[0] == "tokendistill"
        assert main([*words[1:], "--device", "cpu"]) == 0, line
    out = capsys.readouterr().out
    assert "next: tokendistill train" in out and "next: tokendistill evaluate" in out
    assert (tmp_path / "runs" / "eval" / "metrics.json").is_file()
