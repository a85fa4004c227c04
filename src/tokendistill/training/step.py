"""One optimizer step's loss: the step's rows split into forward passes, each pass's loss scaled so that the
parts (and the processes) add up to the whole batch's loss, gradients accumulated and synchronised once."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from tokendistill.config import TrainConfig
from tokendistill.training.batching import DEFAULT_PASS_COST, PASS_COST, forward_batches
from tokendistill.training.data import encode_rows, group_token_totals, pass_loss
from tokendistill.training.modes.base import LABEL, RATIONALE, Signal, TrainingRow

LOSS_GROUPS = (LABEL, RATIONALE)


def step_loss(config: TrainConfig, loaded: Any, model: Any, accelerator: Any, signal: Signal | None,
               device: torch.device, local_rows: list[TrainingRow]) -> tuple[float, dict[str, float]]:
    """One optimizer step's loss and its parts, gradients accumulated (the optimizer does not step here).

    ``local_rows``: this process's share of the step's rows (every world-th example); they are split into
    forward passes (each of at most 1 / --gradient-accumulation of them; cut by length, unless told not to).
    """
    world = accelerator.num_processes
    chunk_rows = forward_batches(loaded.tokenizer, local_rows, config.gradient_accumulation,
                                 config.batch_by_length, PASS_COST.get(device.type, DEFAULT_PASS_COST))
    encoded = [
        encode_rows(
            loaded.tokenizer, part_rows, loaded.is_encoder_decoder, config.max_input_length,
            config.max_target_length,
        )
        for part_rows in chunk_rows
    ]
    # The mode's own loss term (a KL to the teacher), if it has one: which rows of each pass it reads.
    plans = [
        signal.plan(part_rows, part, loaded.is_encoder_decoder) for part_rows, part in zip(chunk_rows, encoded)
    ] if signal else []
    signal_tokens = float(sum(signal.tokens(plan) for plan in plans)) if signal else 0.0
    totals = None
    if world > 1 or len(encoded) > 1:
        # Per-group token counts of the whole step (all micro-batches, summed over processes), so that the
        # parts' losses add up to the loss of the full batch exactly as one process would compute it.
        local_counts = group_token_totals(encoded, loaded.is_encoder_decoder)
        counts = torch.tensor(
            [float(local_counts.get(g, 0)) for g in LOSS_GROUPS] + [signal_tokens], device=accelerator.device
        )
        if world > 1:
            counts = accelerator.reduce(counts, "sum")
        *group_counts, signal_tokens = counts.tolist()
        totals = {group: float(count) for group, count in zip(LOSS_GROUPS, group_counts)}
    value, parts = 0.0, {}
    for number, part in enumerate(encoded):
        # Gradients are averaged across processes once per step, after the last micro-batch.
        sync = number == len(encoded) - 1
        with accelerator.autocast(), (nullcontext() if sync else accelerator.no_sync(model)):
            loss, part_losses, losses = pass_loss(model, part, accelerator.device, loaded.is_encoder_decoder,
                                                  config.alpha, totals, base_model=loaded.model)
            if signal is not None:
                term = signal.loss_sum(plans[number], losses, loaded.model) / max(signal_tokens, 1)
                loss = signal.label_scale * loss + signal.weight * term
                part_losses[signal.name] = float(term.detach())
            value += float(loss.detach())
            for name, amount in part_losses.items():
                parts[name] = parts.get(name, 0.0) + amount
            # Data parallelism averages gradients over processes; the parts here are already shares of the
            # whole batch's loss, so they are scaled back up.
            accelerator.backward(loss * world)
    if world > 1:
        summed = accelerator.reduce(torch.tensor([value, *parts.values()], device=accelerator.device), "sum")
        value, parts = float(summed[0]), dict(zip(parts, summed[1:].tolist()))
    return value, parts
