"""Evaluation during training: when it is due, and the best step so far taken back from a resumed history."""

from pathlib import Path

import pytest

from tokendistill.config import TrainConfig
from tokendistill.errors import UserError
from tokendistill.student import StudentPrompt
from tokendistill.tasks import get_task, load_examples
from tokendistill.training.validation import PeriodicEvaluation


def scorer(tmp_path: Path, **settings) -> PeriodicEvaluation:
    config = TrainConfig(task="keywords", student="unused", output=str(tmp_path), eval_every=2, eval_limit=8,
                         steps=5, keep_best=True, **settings)
    task = get_task("keywords")
    training = load_examples(task, config.split, None, 16, config.seed, config.test_fraction)
    return PeriodicEvaluation(config, task, training, StudentPrompt(), tmp_path)


def test_it_is_due_every_n_steps_and_at_the_last(tmp_path: Path) -> None:
    assert [step for step in range(1, 6) if scorer(tmp_path).due(step)] == [2, 4, 5]


def test_a_resumed_run_takes_back_its_best_step_from_the_history(tmp_path: Path) -> None:
    evaluation = scorer(tmp_path)
    evaluation.resume([{"step": 1}, {"step": 2, "eval_accuracy": 0.4}, {"step": 4, "eval_accuracy": 0.7},
                       {"step": 5, "eval_accuracy": 0.7}])
    assert (evaluation.best_step, evaluation.best_accuracy) == (4, 0.7)  # the first of equal scores
    evaluation.resume([{"step": 1}])
    assert (evaluation.best_step, evaluation.best_accuracy) == (None, None)
    assert evaluation.best_state() is None  # nothing kept yet


def test_the_training_split_is_not_a_held_out_split(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is the training split"):
        scorer(tmp_path, eval_split="train")
