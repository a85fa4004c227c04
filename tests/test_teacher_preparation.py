"""A teacher at chance is fine-tuned by the pipeline, then attributes and teaches a student: one YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tokendistill.cli import main
from tokendistill.teacher_eval import TeacherEvalConfig, teacher_eval


@pytest.mark.slow
def test_weak_teacher_is_fine_tuned_then_used_from_one_yaml(tmp_path: Path, t5_dir: Path) -> None:
    before = teacher_eval(TeacherEvalConfig(task="keywords", teacher=str(t5_dir), limit=60, device="cpu",
                                            max_new_tokens=4), progress=False)
    assert before["accuracy"][before["best"]] < 1 / 6 + 0.15, "the random teacher should be near chance"

    experiment = {
        "output": str(tmp_path / "grid"),
        "device": "cpu",
        "tasks": [{"name": "keywords", "train_sizes": [24], "test_limit": 60}],
        "teacher": {
            "model": str(t5_dir),
            "finetune": {"steps": 150, "batch_size": 32, "learning_rate": 3e-3, "limit": 2000,
                         "max_target_length": 4, "checkpoint_every": 50},
            "extract": {"batch_size": 16, "max_new_tokens": 4},
        },
        "student": {"model": str(t5_dir), "train": {"steps": 3, "batch_size": 8}, "evaluate": {"max_new_tokens": 4}},
        "modes": ["multitask"],
        "top_k": [3],
        "seeds": [0],
        "competence": {"on_failure": "warn"},  # tiny random models learn nothing
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["run", str(path)]) == 0

    grid = tmp_path / "grid" / "keywords"
    after = json.loads((grid / "teacher-eval" / "teacher_eval.json").read_text())
    assert after["split"] == "test" and after["examples"] == 60
    assert after["accuracy"][after["best"]] > 0.6, after  # chance is 1/6
    trained_on = (grid / "teacher" / "train_ids.txt").read_text().split()
    assert len(trained_on) == 2000 and all(example_id.startswith("train-") for example_id in trained_on)
    records = [json.loads(line) for line in (grid / "rationales-teacher" / "records.jsonl").read_text().splitlines()]
    assert len(records) == 24 and all(record["teacher_trained_on"] is True for record in records)
    manifest = json.loads((grid / "rationales-teacher" / "manifest.json").read_text())
    assert manifest["summary"]["teacher_trained_on"] == 24
    # The base model's check runs on the validation rows (after the teacher's 2,000 training rows), as every
    # check of the grid's setting does: never on the test rows.
    checked_before = json.loads((grid / "teacher-eval-before" / "teacher_eval.json").read_text())
    assert checked_before["split"] == "train[2000:2500]" and checked_before["examples"] == 500
    again = teacher_eval(TeacherEvalConfig(task="keywords", teacher=str(t5_dir), split="train[2000:2500]",
                                           limit=500, device="cpu", max_new_tokens=4), progress=False)
    assert checked_before["accuracy"] == again["accuracy"]
    assert "before fine-tuning" in (tmp_path / "grid" / "results.md").read_text()
