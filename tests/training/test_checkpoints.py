"""A checkpoint's random states: every process's, and the main process's alone in checkpoints written before."""

from __future__ import annotations

import logging
import random

import pytest
import torch

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
