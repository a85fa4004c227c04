"""Reading a student's answers: greedy generation, or the candidate it scores highest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tokendistill.config import EvaluateConfig
from tokendistill.errors import UserError
from tokendistill.evaluation import evaluate, predict
from tokendistill.models import load_model
from tokendistill.student import StudentPrompt
from tokendistill.tasks import get_task, load_examples
from tokendistill.tasks.base import ANSWER_CUE as CAUSAL_CUE


def causal_log_prob(loaded, prompt: str, answer: str) -> float:
    """log p(" " + answer | prompt) from one unbatched forward pass, as the causal student was trained."""
    tokenizer, model = loaded.tokenizer, loaded.model
    prompt_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    answer_ids = tokenizer(" " + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.cat([prompt_ids, answer_ids], dim=1)).logits[0, prompt_ids.shape[1] - 1 : -1]
    return float(torch.log_softmax(logits.float(), dim=-1).gather(-1, answer_ids[0][:, None]).sum())


def test_choice_reading_picks_the_candidate_the_student_scores_highest(llama_dir: Path) -> None:
    loaded = load_model(str(llama_dir), device="cpu", offsets=True)
    task = get_task("keywords")
    examples = load_examples(task, "test", limit=6)
    records, accuracy = predict(loaded, task, examples, StudentPrompt("predict: "), batch_size=4, max_input_length=64,
                                max_new_tokens=3, answer="choice_sum")
    for example, record in zip(examples, records):
        scores = [causal_log_prob(loaded, "predict: " + example.input + CAUSAL_CUE, c) for c in example.choices]
        assert record["prediction"] == example.choices[int(np.argmax(scores))]
        assert record["correct"] == task.score(record["prediction"], example)
        assert record["generation_correct"] == task.score(record["generation"], example)
    assert accuracy == sum(record["correct"] for record in records) / len(records)


def test_evaluate_records_both_readings_and_reevaluates_on_a_new_reading(tmp_path: Path, llama_dir: Path) -> None:
    config = EvaluateConfig(task="keywords", model=str(llama_dir), output=str(tmp_path / "eval"), limit=8,
                            max_new_tokens=3, max_input_length=64, answer="choice_mean", device="cpu")
    metrics = evaluate(config, progress=False)
    records = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert metrics["answer"] == "choice_mean"
    assert metrics["generation_accuracy"] == sum(r["generation_correct"] for r in records) / len(records)
    assert metrics["accuracy"] == sum(r["correct"] for r in records) / len(records)


def test_choice_reading_on_a_task_without_candidates_is_a_user_error(llama_dir: Path) -> None:
    loaded = load_model(str(llama_dir), device="cpu", offsets=True)
    task = get_task("keywords")
    examples = [dataclasses.replace(example, choices=()) for example in load_examples(task, "test", limit=2)]
    with pytest.raises(UserError, match="no closed set of answers"):
        predict(loaded, task, examples, StudentPrompt(), 2, 64, 3, answer="choice_sum")


def test_a_finished_evaluation_is_returned_not_redone_and_a_change_is_refused_unless_overwritten(
        tmp_path: Path, llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tokendistill import evaluation

    config = EvaluateConfig(task="keywords", model=str(llama_dir), output=str(tmp_path / "eval"), limit=6,
                            max_new_tokens=3, max_input_length=64, device="cpu")
    first = evaluate(config, progress=False)
    loads = []
    real_load = evaluation.load_model
    monkeypatch.setattr(evaluation, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    assert evaluate(dataclasses.replace(config, batch_size=3), progress=False) == first  # where it runs: the same
    assert loads == []
    # Another evaluation into the same folder is refused before anything loads (as extract and train refuse
    # another run's folder); it used to replace the first silently.
    with pytest.raises(UserError, match=r"holds an evaluation of a different configuration \(differs in: limit\)"):
        evaluate(dataclasses.replace(config, limit=4), progress=False)
    assert loads == [] and json.loads((tmp_path / "eval" / "metrics.json").read_text()) == first
    again = evaluate(dataclasses.replace(config, limit=4, overwrite=True), progress=False)
    assert again["examples"] == 4 and len(loads) == 1


def test_metrics_written_before_their_identity_still_count_as_finished(tmp_path: Path, llama_dir: Path) -> None:
    """A grid begun before metrics.json recorded its identity: its cells are not evaluated again when the student,
    the rows and the answer reading agree (the rule `run` applied then)."""
    from tokendistill.evaluation import finished_metrics

    student = tmp_path / "student"
    student.mkdir()
    (student / "tokendistill.json").write_text(json.dumps({"identity": "abc"}))
    output = tmp_path / "eval"
    output.mkdir()
    (output / "predictions.jsonl").write_text('{"id": "a", "correct": true}\n')
    legacy = {"accuracy": 1.0, "limit": 8, "answer": "generation", "model_identity": "abc"}
    (output / "metrics.json").write_text(json.dumps(legacy))
    config = EvaluateConfig(task="keywords", model=str(student), output=str(output), limit=8)
    assert finished_metrics(config) == legacy
    assert finished_metrics(dataclasses.replace(config, limit=9)) is None
    (student / "tokendistill.json").write_text(json.dumps({"identity": "retrained"}))
    assert finished_metrics(config) is None
