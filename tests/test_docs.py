"""The Python API's worked example (docs/python.md) runs as written, with tiny models in place of real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


@pytest.mark.slow
def test_the_python_worked_example_runs(tmp_path: Path, llama_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = DOC.read_text().split("```python\n")[1].split("```")[0]
    replaced = (code.replace('"HuggingFaceTB/SmolLM2-360M-Instruct"', repr(str(llama_dir)))
                .replace('"HuggingFaceTB/SmolLM2-135M"', repr(str(llama_dir))).replace("steps=200", "steps=2"))
    assert replaced.count(str(llama_dir)) == 2 and "steps=2," in replaced  # the doc still reads as tested
    rows = [f"review {i}: {'loved it and it works well' if i % 2 else 'broke at once and awful'},"
            f"{'positive' if i % 2 else 'negative'}" for i in range(24)]
    (tmp_path / "reviews.csv").write_text("review,sentiment\n" + "\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    exec(compile(replaced, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "best reading:" in out and "student accuracy on the held-out rows:" in out
    assert (tmp_path / "runs" / "student" / "README.md").is_file()
