"""One optimizer step's loss: however the step's rows are split into forward passes, the loss, its parts and the
accumulated gradients are those of one pass over the whole batch."""

from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from tokendistill.config import TrainConfig
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.batching import PASS_COST, forward_batches
from tokendistill.training.modes import MODES
from tokendistill.training.step import step_loss

INPUTS = ["the tiger went near the river", "a small yellow truck", "the red bus stopped", "a cat sat on the mat",
          "an old green car", "the lion slept under a tree"]


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_a_step_split_into_passes_gives_the_loss_and_gradients_of_one_pass(
        family: str, t5_dir: Path, llama_dir: Path) -> None:
    folder = t5_dir if family == "t5" else llama_dir
    examples = [Example(f"e{i}", (Segment("input", text),), "animal" if i % 2 else "vehicle")
                for i, text in enumerate(INPUTS)]
    rows = [row for example in examples
            for row in MODES.get("multitask").rows(example, {"rationale": example.input.split()[1:3]})]
    accelerator = Accelerator(cpu=True)
    tokenizer = load_model(str(folder), device="cpu").tokenizer
    assert len(forward_batches(tokenizer, rows, 3, True, PASS_COST["cpu"])) >= 3  # the split step is split
    found = []
    for passes in (1, 3):
        loaded = load_model(str(folder), device="cpu")
        config = TrainConfig(task="keywords", student=str(folder), output="unused", alpha=0.3,
                             gradient_accumulation=passes)
        value, parts = step_loss(config, loaded, loaded.model, accelerator, None, torch.device("cpu"), rows)
        gradients = torch.cat([p.grad.flatten() for p in loaded.model.parameters() if p.grad is not None])
        found.append((value, parts, gradients))
    (value, parts, gradients), (split_value, split_parts, split_gradients) = found
    assert split_value == pytest.approx(value, rel=1e-5)
    assert split_parts == pytest.approx(parts, rel=1e-5)
    assert value == pytest.approx(0.3 * parts["label_loss"] + 0.7 * parts["rationale_loss"], rel=1e-5)
    torch.testing.assert_close(split_gradients, gradients, rtol=1e-4, atol=1e-6)
