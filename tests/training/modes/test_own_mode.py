"""A mode defined outside the package trains through `train`: the trainer calls its hooks and knows no mode by name."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from tokendistill.cli import main
from tokendistill.config import TrainConfig
from tokendistill.options import option
from tokendistill.training.modes import LABEL, MODES, Mode, RationaleSource, TrainingRow


@dataclass(kw_only=True)
class UpperConfig(TrainConfig):
    """The test mode's own option: a flag of `train` only with --mode test_upper."""

    norm_weight: float = option(0.25, "weight of the toy logit-norm term", minimum=0)


class LogitNorm:
    """A toy signal: the mean squared logit over the label rows' first target token."""

    name = "logit_norm"
    label_scale = 1.0

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def plan(self, rows: Sequence[TrainingRow], encoded: Any, is_encoder_decoder: bool) -> list[int]:
        return [i for i, row in enumerate(rows) if row.group == LABEL]

    def tokens(self, plan: list[int]) -> int:
        return len(plan)

    def loss_sum(self, plan: list[int], losses: Any, model: Any) -> torch.Tensor:
        return sum((losses.first(row, 1).float() ** 2).mean() for row in plan) if plan else losses.logits.sum() * 0


@dataclass(frozen=True)
class Upper(Mode):
    """Input -> the label in capitals, with the toy signal."""

    def rows(self, example: Any, rationale: Mapping[str, Any] | None) -> list[TrainingRow]:
        return [TrainingRow(example.input, example.target.upper(), LABEL)]

    def signal(self, config: Any, student_tokenizer: Any, device: torch.device) -> LogitNorm:
        return LogitNorm(config.norm_weight)


@pytest.fixture
def upper_mode():
    MODES.register("test_upper")(Upper("test_upper", RationaleSource.NONE, predict_prefix="", config=UpperConfig))
    yield
    del MODES._entries["test_upper"]


def test_a_mode_defined_in_a_test_file_trains_through_train(upper_mode: None, tmp_path: Path,
                                                            llama_dir: Path) -> None:
    student = tmp_path / "student"
    assert main(["train", "--task", "keywords", "--device", "cpu", "--limit", "8", "--student", str(llama_dir),
                 "--output", str(student), "--mode", "test_upper", "--steps", "2", "--batch-size", "4",
                 "--norm-weight", "0.5"]) == 0
    log = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(entry["logit_norm"] > 0 for entry in log)
    # Its own option reached its signal, from a flag no package file declares.
    assert all(entry["loss"] == pytest.approx(entry["label_loss"] + 0.5 * entry["logit_norm"], rel=1e-5)
               for entry in log)
    assert json.loads((student / "tokendistill.json").read_text())["mode"] == "test_upper"
