"""Candidate scoring against a direct computation, and the teacher-eval command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tokendistill.attribution.choices import score_choices
from tokendistill.attribution.teacher import Teacher
from tokendistill.cli import main
from tokendistill.models import load_model
from tokendistill.tasks import get_task, load_examples


def direct_log_prob(teacher: Teacher, text: str, answer: str) -> tuple[float, int]:
    """log p(answer | text) from one unbatched forward pass over plain token ids."""
    tokenizer, model = teacher.tokenizer, teacher.model
    prompt = tokenizer(text + teacher.prompt_suffix, return_tensors="pt")["input_ids"]
    if teacher.is_encoder_decoder:
        answer_ids = tokenizer(answer, return_tensors="pt")["input_ids"]
        logits = model(input_ids=prompt, labels=answer_ids).logits[0]
        targets = answer_ids[0]
    else:
        answer_ids = tokenizer(" " + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
        sequence = torch.cat([prompt, answer_ids], dim=1)
        logits = model(input_ids=sequence).logits[0, prompt.shape[1] - 1 : -1]
        targets = answer_ids[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    return float(log_probs.sum()), len(targets)


@pytest.mark.parametrize("model_fixture", ["t5_dir", "llama_dir"])
def test_choice_scores_match_a_direct_computation(model_fixture: str, request: pytest.FixtureRequest) -> None:
    teacher = Teacher(load_model(str(request.getfixturevalue(model_fixture)), device="cpu", offsets=True))
    task = get_task("keywords")
    examples = load_examples(task, "train", limit=5)
    scores = score_choices(teacher, examples, task.name, max_rows=7)  # chunks cut across examples
    for example, sums, counts in zip(examples, scores.log_prob_sums, scores.token_counts):
        expected = [direct_log_prob(teacher, example.input, choice) for choice in example.choices]
        np.testing.assert_allclose(sums, [value for value, _ in expected], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(counts, [count for _, count in expected])
    for summed, mean, counts in zip(scores.scores("sum"), scores.scores("mean"), scores.token_counts):
        np.testing.assert_allclose(mean, summed / counts)
    best = scores.best("sum")
    assert best == [example.choices[int(np.argmax(s))] for example, s in zip(examples, scores.log_prob_sums)]


def test_mean_scoring_divides_by_token_count() -> None:
    from tokendistill.attribution.choices import ChoiceScores

    scores = ChoiceScores([("short", "a long one")], [np.array([-2.0, -3.0])], [np.array([1.0, 3.0])])
    assert scores.best("sum") == ["short"] and scores.best("mean") == ["a long one"]


def test_teacher_eval_reports_each_reading(tmp_path: Path, t5_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teacher-eval", "--task", "keywords", "--teacher", str(t5_dir), "--limit", "12", "--device", "cpu",
                 "--max-new-tokens", "3", "--output", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "teacher_eval.json").read_text())
    assert set(result["accuracy"]) == {"generation", "choice_sum", "choice_mean"}
    assert all(0 <= value <= 1 for value in result["accuracy"].values())
    assert result["chance_accuracy"] == pytest.approx(1 / 6)
    assert result["extract_with"].startswith("--target")
    assert "best reading" in capsys.readouterr().out


def test_extract_with_choice_target_attributes_the_best_scored_choice(tmp_path: Path, llama_dir: Path) -> None:
    assert main(["extract", "--task", "keywords", "--teacher", str(llama_dir), "--output", str(tmp_path / "r"),
                 "--limit", "6", "--top-k", "2", "--target", "choice", "--device", "cpu"]) == 0
    records = [json.loads(line) for line in (tmp_path / "r" / "records.jsonl").read_text().splitlines()]
    teacher = Teacher(load_model(str(llama_dir), device="cpu", offsets=True))
    task = get_task("keywords")
    examples = {e.id: e for e in load_examples(task, "train", limit=6)}
    expected = score_choices(teacher, list(examples.values()), "keywords").best("mean")
    assert {r["id"]: r["teacher_answer"] for r in records} == dict(zip(examples, expected))
    assert all(r["attributed"] == "choice" and r["attributed_answer"] == r["teacher_answer"] for r in records)


def test_choice_target_without_choices_is_a_user_error(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"input": "one two three four", "label": "x"}\n')
    assert main(["extract", "--task", "text", "--teacher", "x", "--output", str(tmp_path / "o"), "--data", str(data),
                 "--target", "choice", "--top-k", "1"]) == 2
