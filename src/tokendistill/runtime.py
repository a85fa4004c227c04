"""The process a stage runs in: its random generators and its place among distributed processes."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from tokendistill.models import resolve_device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def process_state(device: str) -> Any:
    """This process's place among those started by `accelerate launch` or `torchrun` (one process: 0 of 1)."""
    from accelerate import PartialState

    return PartialState(cpu=resolve_device(device).type == "cpu")
