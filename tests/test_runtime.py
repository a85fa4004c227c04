"""The process a stage runs in: seeding fixes every generator the stages draw from."""

import random

import numpy as np
import torch

from tokendistill.runtime import process_state, seed_everything


def test_seeding_fixes_python_numpy_and_torch_draws() -> None:
    draws = []
    for _ in range(2):
        seed_everything(7)
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert draws[0] == draws[1]
    seed_everything(8)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) != draws[0]


def test_one_process_is_the_main_process_zero_of_one() -> None:
    state = process_state("cpu")
    assert (state.process_index, state.num_processes, state.is_main_process) == (0, 1, True)
