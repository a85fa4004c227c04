"""The competence checks: whether a grid's setting can decide anything."""

from __future__ import annotations

import json
from pathlib import Path

from tokendistill.competence import Competence, majority_share, student_problem, teacher_problem


def write_evaluation(folder: Path, accuracy: float, targets: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "examples": len(targets)}))
    (folder / "predictions.jsonl").write_text("".join(json.dumps({"id": str(i), "target": t}) + "\n"
                                                      for i, t in enumerate(targets)))
    return folder


def test_competence_rules_against_the_majority_class_and_the_teacher(tmp_path: Path) -> None:
    rules = Competence()
    targets = ["yes"] * 6 + ["no"] * 4  # majority 60%
    check = {"accuracy": {"generation": 0.9}, "best": "generation", "chance_accuracy": 0.5}
    assert majority_share(write_evaluation(tmp_path / "a", 0.7, targets)) == (0.7, 0.6)
    assert "majority class 60.0%" in student_problem(rules, tmp_path / "a", check)  # 70 < 60 + 15
    assert student_problem(rules, write_evaluation(tmp_path / "b", 0.78, targets), check) is None
    assert "under 10 points above" in student_problem(rules, write_evaluation(tmp_path / "c", 0.85, targets), check)
    assert teacher_problem(rules, check) is None  # 90 >= 50 + 15 + 10
    assert "cannot beat a competent student" in teacher_problem(rules, {**check, "accuracy": {"generation": 0.7}})
