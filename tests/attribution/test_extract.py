"""The extract stage: what it computes for each answer target, and only that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokendistill.analysis import analyze_folder
from tokendistill.attribution.teacher import Teacher
from tokendistill.cli import main
from tokendistill.report import ReportConfig, build_report


def extract(teacher: Path, output: Path, *extra: str) -> list[dict]:
    assert main(["extract", "--task", "keywords", "--teacher", str(teacher), "--output", str(output), "--limit", "8",
                 "--top-k", "2", "--max-new-tokens", "3", "--device", "cpu", *extra]) == 0
    return [json.loads(line) for line in (output / "records.jsonl").read_text().splitlines()]


def test_gold_target_never_generates_and_says_the_accuracy_is_unknown(
    tmp_path: Path, t5_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_generation(*args, **kwargs):
        raise AssertionError("the teacher generated under --target gold")

    monkeypatch.setattr(Teacher, "generate", no_generation)
    with caplog.at_level("INFO"):
        records = extract(t5_dir, tmp_path / "gold", "--target", "gold")
    assert all(r["teacher_answer"] is None and r["teacher_correct"] is None for r in records)
    assert all(r["attributed_answer"] == r["target"] and r["rationale"] for r in records)
    summary = json.loads((tmp_path / "gold" / "manifest.json").read_text())["summary"]
    assert summary["teacher_accuracy"] is None
    assert "teacher's accuracy is unknown" in caplog.text and "near chance" not in caplog.text
    analysis = analyze_folder(tmp_path / "gold")[0]
    assert analysis["teacher_accuracy"] is None and analysis["answer_overlap"]["gold"]["teacher_right"]["examples"] == 0
    assert "not asked (--target gold)" in build_report(ReportConfig(run_dir=str(tmp_path / "gold"))).read_text()


def test_gold_target_with_only_correct_still_asks_the_teacher(tmp_path: Path, t5_dir: Path) -> None:
    calls = []
    original = Teacher.generate

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Teacher, "generate", counted)
        assert main(["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(tmp_path / "g"),
                     "--limit", "8", "--top-k", "2", "--max-new-tokens", "3", "--device", "cpu", "--target", "gold",
                     "--only-correct"]) in (0, 2)  # 2: a random teacher is never right, which it then says
    records = [json.loads(line) for line in (tmp_path / "g" / "records.jsonl").read_text().splitlines()]
    assert calls and all(isinstance(r["teacher_correct"], bool) for r in records)
