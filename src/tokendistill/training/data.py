"""Turning training rows into model inputs, for seq2seq and decoder-only students alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from tokendistill.training.modes import TrainingRow

# A decoder-only student reads the source, this cue, then writes the target (the cue is the same at test time).
CAUSAL_CUE = "\nAnswer:"


def causal_prompt(source: str) -> str:
    return source + CAUSAL_CUE


@dataclass
class EncodedRows:
    """Model inputs for R rows; ``labels`` is -100 where no loss is taken."""

    model_inputs: dict[str, Tensor]
    labels: Tensor  # (R, L)
    groups: list[str]


def encode_rows(
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[TrainingRow],
    is_encoder_decoder: bool,
    max_input_length: int,
    max_target_length: int,
) -> EncodedRows:
    sources = [row.source for row in rows]
    targets = [row.target for row in rows]
    groups = [row.group for row in rows]
    if is_encoder_decoder:
        inputs = tokenizer(sources, padding=True, truncation=True, max_length=max_input_length, return_tensors="pt")
        target_ids = tokenizer(
            targets, padding=True, truncation=True, max_length=max_target_length, return_tensors="pt"
        )
        labels = target_ids["input_ids"].masked_fill(target_ids["attention_mask"] == 0, -100)
        return EncodedRows(
            {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}, labels, groups
        )
    prompt_ids = tokenizer([causal_prompt(s) for s in sources], truncation=True, max_length=max_input_length)[
        "input_ids"
    ]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    answer_ids = [
        tokenizer(" " + target, add_special_tokens=False, truncation=True, max_length=max_target_length)[
            "input_ids"
        ]
        + eos
        for target in targets
    ]
    width = max(len(p) + len(a) for p, a in zip(prompt_ids, answer_ids))
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for row, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        sequence = prompt + answer
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        attention_mask[row, : len(sequence)] = 1
        labels[row, len(prompt) : len(sequence)] = torch.tensor(answer)
    return EncodedRows({"input_ids": input_ids, "attention_mask": attention_mask}, labels, groups)


def token_losses(logits: Tensor, labels: Tensor, is_encoder_decoder: bool) -> tuple[Tensor, Tensor]:
    """Per-row summed token loss (R,) and token count (R,).

    logits: (R, L, V). A decoder's logits at position t predict token t + 1, so they are shifted first.
    """
    if not is_encoder_decoder:
        logits, labels = logits[:, :-1], labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    mask = labels != -100
    return (losses * mask).sum(dim=1), mask.sum(dim=1)


def group_loss(
    row_loss: Tensor, row_tokens: Tensor, groups: Sequence[str], group: str, total_tokens: float | None = None
) -> Tensor | None:
    """Mean token loss over the rows of one group, as if that group had had its own forward pass.

    ``total_tokens``: the group's token count over the whole step when this is one of several micro-batches,
    so that the micro-batch losses add up to the full batch's.
    """
    selected = torch.tensor([g == group for g in groups], device=row_loss.device)
    if total_tokens is not None:
        return row_loss[selected].sum() / max(total_tokens, 1) if total_tokens else None
    if not selected.any():
        return None
    return row_loss[selected].sum() / row_tokens[selected].sum().clamp(min=1)


def multitask_loss(
    row_loss: Tensor,
    row_tokens: Tensor,
    groups: Sequence[str],
    alpha: float,
    total_tokens: Mapping[str, float] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """alpha * label loss + (1 - alpha) * rationale loss; the label loss alone when a batch has no rationale rows."""
    totals = total_tokens or {}
    label = group_loss(row_loss, row_tokens, groups, "label", totals.get("label") if total_tokens else None)
    rationale = group_loss(row_loss, row_tokens, groups, "rationale", totals.get("rationale") if total_tokens else None)
    parts = {}
    if label is not None:
        parts["label_loss"] = float(label.detach())
    if rationale is not None:
        parts["rationale_loss"] = float(rationale.detach())
    if rationale is None:
        if label is None:
            return row_loss.sum() * 0, parts
        return label, parts
    if label is None:
        return rationale, parts
    return alpha * label + (1 - alpha) * rationale, parts


def group_token_totals(encoded: Sequence[EncodedRows], is_encoder_decoder: bool) -> dict[str, float]:
    """Target tokens per loss group over all micro-batches of a step."""
    totals: dict[str, float] = {}
    for part in encoded:
        labels = part.labels if is_encoder_decoder else part.labels[:, 1:]
        counts = (labels != -100).sum(dim=1).tolist()
        for group, count in zip(part.groups, counts):
            totals[group] = totals.get(group, 0) + count
    return totals
