"""A checkpoint's random states (every process's, and the main process's alone in checkpoints written before) and
its model and optimizer state, by name or, in checkpoints written before, by position."""

from __future__ import annotations

import copy
import logging
import random
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer

from tokendistill.training.checkpoints import rank_rng_state, rng_state, set_rng_state


def test_each_process_takes_its_own_random_state() -> None:
    random.seed(1)
    first = rng_state()
    random.seed(2)
    second = rng_state()
    checkpoint = {"rng": first, "rng_by_rank": [first, second]}
    assert rank_rng_state(checkpoint, 1, 2) is second and rank_rng_state(checkpoint, 0, 2) is first


def test_a_state_restored_draws_what_it_drew_before() -> None:
    torch.manual_seed(3)
    state = rng_state()
    expected = (torch.rand(4), random.random())
    torch.manual_seed(4)
    random.seed(4)
    set_rng_state(state)
    assert torch.equal(torch.rand(4), expected[0]) and random.random() == expected[1]


def test_an_older_checkpoint_or_another_process_count_takes_the_main_state_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    main = rng_state()
    with caplog.at_level(logging.WARNING):
        assert rank_rng_state({"rng": main}, 0, 1) is main  # one process, written before: as it always was
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert rank_rng_state({"rng": main, "rng_by_rank": [main]}, 1, 2) is main
    assert "not bit-identical" in caplog.text


def _prepared(seed: int, accelerator: Accelerator) -> tuple[torch.nn.Module, AcceleratedOptimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return accelerator.prepare(model, torch.optim.AdamW(model.parameters(), lr=1e-2))


def _step(model: torch.nn.Module, optimizer: AcceleratedOptimizer) -> None:
    model(torch.ones(3, 4)).square().sum().backward()
    optimizer.step()
    optimizer.zero_grad()


def test_a_checkpoint_by_name_or_by_position_restores_the_same_training_state() -> None:
    """Checkpoints key the optimizer state by parameter name (what torch's distributed state-dict API gives under
    any sharding); those written before keyed it by position, and must resume as they always did."""
    from accelerate import Accelerator

    from tokendistill.training.checkpoints import restore_training_state, training_state

    accelerator = Accelerator(cpu=True)
    model, optimizer = _prepared(0, accelerator)
    _step(model, optimizer)
    model_state, optimizer_state = training_state(accelerator, model, optimizer)
    assert set(optimizer_state["state"]) == {name for name, _ in model.named_parameters()}
    # Copies: a state dict holds the live tensors, which the next step changes (the trainer writes them at once).
    by_name = copy.deepcopy({"format": 2, "model": model_state, "optimizer": optimizer_state})
    by_position = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})  # format 1
    assert set(by_position["optimizer"]["state"]) == {0, 1, 2, 3}
    _step(model, optimizer)
    expected = [parameter.detach().clone() for parameter in model.parameters()]
    for checkpoint in (by_name, by_position):
        restored, restored_optimizer = _prepared(1, accelerator)
        restore_training_state(accelerator, restored, restored_optimizer, checkpoint)
        _step(restored, restored_optimizer)
        assert all(torch.equal(a, b) for a, b in zip(restored.parameters(), expected, strict=True))


@pytest.mark.parametrize("change", ["a weight missing", "a weight of another model"])
def test_a_checkpoint_that_does_not_fit_the_student_is_one_line(change: str) -> None:
    from accelerate import Accelerator

    from tokendistill.errors import UserError
    from tokendistill.training.checkpoints import restore_training_state, training_state

    accelerator = Accelerator(cpu=True)
    model, optimizer = _prepared(0, accelerator)
    _step(model, optimizer)
    model_state, optimizer_state = copy.deepcopy(training_state(accelerator, model, optimizer))
    if change == "a weight missing":
        del model_state["2.bias"]
    else:
        model_state["3.weight"] = torch.zeros(2)
    with pytest.raises(UserError, match="does not fit this student"):
        restore_training_state(accelerator, *_prepared(1, accelerator),
                               {"format": 2, "model": model_state, "optimizer": optimizer_state})
