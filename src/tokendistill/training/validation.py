"""Evaluation during training (`--eval-every N`) on a held-out split, and the best step's weights kept
(`--keep-best`), as users of the HF Trainer expect; resumable like the rest of training (the best weights
so far live in their own file beside the checkpoint, and the scores in the training history)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from tokendistill.artefacts import BEST_WEIGHTS
from tokendistill.config import TrainConfig
from tokendistill.errors import UserError
from tokendistill.folders import write_file
from tokendistill.models import LoadedModel
from tokendistill.student import StudentPrompt
from tokendistill.tasks import Example, Task, get_task, load_examples
from tokendistill.training import answers

log = logging.getLogger(__name__)


class PeriodicEvaluation:
    """Scores the student on the held-out rows every ``eval_every`` steps; keeps the best weights."""

    def __init__(self, config: TrainConfig, task: Task, training: list[Example], prompt: StudentPrompt,
                 output: Path) -> None:
        if config.eval_split == config.split:
            raise UserError(f"--eval-split {config.eval_split} is the training split; evaluate on held-out rows "
                            "(valid, or test with a test file)")
        held_out_task = get_task(config.task, input_column=config.input_column, label_column=config.label_column,
                                 free_text=config.free_text)
        self.examples = load_examples(held_out_task, config.eval_split, config.data, config.eval_limit, config.seed,
                                      config.test_fraction, config.valid_fraction)
        seen = {example.input for example in training}
        if sum(example.input in seen for example in self.examples) >= 0.1 * len(self.examples):
            raise UserError(f"the --eval-split {config.eval_split} rows are mostly training rows; pass held-out rows: "
                            "with one file, --valid-fraction 0.1 (in every stage) and --eval-split valid; or a "
                            "validation file; or rows this run does not train on, --eval-split "
                            f"'{config.split}[N:N+200]' with --limit N")
        self.task, self.config, self.output = held_out_task, config, output
        self.prompt = prompt  # its is_encoder_decoder is the loaded student's, set when it runs
        self.best_step: int | None = None
        self.best_accuracy: float | None = None

    def resume(self, history: list[dict[str, Any]]) -> None:
        """The best score so far, from a resumed run's history."""
        scored = [entry for entry in history if "eval_accuracy" in entry]
        best = max(scored, key=lambda entry: entry["eval_accuracy"], default=None)
        self.best_step = best["step"] if best else None
        self.best_accuracy = best["eval_accuracy"] if best else None

    def due(self, step: int) -> bool:
        return step % self.config.eval_every == 0 or step == self.config.steps

    def run(self, loaded: LoadedModel, model: torch.nn.Module, step: int) -> float:
        was_training = model.training
        prompt = dataclasses.replace(self.prompt, is_encoder_decoder=loaded.is_encoder_decoder)
        _, accuracy = answers.predict(loaded, self.task, self.examples, prompt, self.config.batch_size,
                                      self.config.max_input_length, self.config.max_target_length)
        model.train(was_training)
        log.info("step %d: accuracy %.3f on %d %s rows", step, accuracy, len(self.examples), self.config.eval_split)
        if self.config.keep_best and (self.best_accuracy is None or accuracy > self.best_accuracy):
            self.best_step, self.best_accuracy = step, accuracy
            state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
            write_file(self.output / BEST_WEIGHTS, lambda handle: torch.save(state, handle))  # whole or not at all
        return accuracy

    def best_state(self) -> dict[str, torch.Tensor] | None:
        path = self.output / BEST_WEIGHTS
        if not (self.config.keep_best and path.is_file()):
            return None
        return torch.load(path, weights_only=True)  # tensors only: no file here runs code
