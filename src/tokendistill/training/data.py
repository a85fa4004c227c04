"""Turning training rows into model inputs, for seq2seq and decoder-only students alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from tokendistill.tasks.base import ANSWER_CUE
from tokendistill.training.modes.base import LABEL, RATIONALE, TrainingRow


# A decoder-only student reads the source, this cue, then writes the target (the cue is the same at test time).
def causal_prompt(source: str, cue: str = "") -> str:
    """A decoder student's prompt: the input, then its row's cue (the answer's, tasks.base.ANSWER_CUE, by default)."""
    return source + (cue or ANSWER_CUE)


@dataclass
class EncodedRows:
    """Model inputs for R rows; ``labels`` is -100 where no loss is taken."""

    model_inputs: dict[str, Tensor]
    labels: Tensor  # (R, L)
    groups: list[str]
    # With decoder prompts (--task-marker decoder): each distinct source once in ``model_inputs``, the row's
    # source among them, and the full decoder sequences (prompt + target, unmasked) to shift into its input.
    source_index: Tensor | None = None  # (R,)
    decoder_ids: Tensor | None = None  # (R, L)
    # Shared-prompt packing (decoder students): S sequences hold the R rows. For each of the N target tokens,
    # its sequence, the position that predicts it, its id and its row; the allowed attention (S, L, L).
    packed_targets: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
    allowed: Tensor | None = None

    def target_ids(self, row: int, is_encoder_decoder: bool) -> list[int]:
        """The token ids row ``row`` is trained to produce, in order (whatever the layout)."""
        if self.packed_targets is not None:
            _, _, ids, rows = self.packed_targets
            return ids[rows == row].tolist()
        labels = self.labels[row] if is_encoder_decoder else self.labels[row, 1:]
        return labels[labels != -100].tolist()


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
    if is_encoder_decoder and any(row.decoder_prompt for row in rows):
        return _encode_with_decoder_prompts(tokenizer, rows, max_input_length, max_target_length)
    if not is_encoder_decoder and any(row.shared_prompt for row in rows):
        return _encode_packed(tokenizer, rows, max_input_length, max_target_length)
    if is_encoder_decoder:
        inputs = tokenizer(sources, padding=True, truncation=True, max_length=max_input_length, return_tensors="pt")
        target_ids = tokenizer(
            targets, padding=True, truncation=True, max_length=max_target_length, return_tensors="pt"
        )
        labels = target_ids["input_ids"].masked_fill(target_ids["attention_mask"] == 0, -100)
        return EncodedRows(
            {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}, labels, groups
        )
    prompt_ids = tokenizer([causal_prompt(row.source, row.cue) for row in rows], truncation=True,
                           max_length=max_input_length)["input_ids"]
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


def _encode_packed(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[TrainingRow], max_input_length: int, max_target_length: int
) -> EncodedRows:
    """Rows that read the same input become one sequence: the tokens their prompts share, then each row's
    own rest (its cue and target) as a block that sees the shared tokens and itself, not the other blocks,
    with position ids that continue from the shared part as if the other blocks were not there.

    Each block's tokens are exactly those `encode_rows` gives that row alone (the shared part is the common
    prefix of the rows' own token ids, so no tokenizer boundary effect can differ), and so, under this
    attention, are its logits: the loss is the separate rows' loss, computed over about half the tokens.
    """
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    by_source: dict[str, list[int]] = {}
    for number, row in enumerate(rows):
        by_source.setdefault(row.source, []).append(number)
    sequences, targets = [], []  # per sequence: (ids, positions, blocks); per target: (seq, predictor, id, row)
    for sequence, numbers in enumerate(by_source.values()):
        parts = []
        for number in numbers:
            prompt = tokenizer(causal_prompt(rows[number].source, rows[number].cue), truncation=True,
                               max_length=max_input_length)["input_ids"]
            answer = tokenizer(" " + rows[number].target, add_special_tokens=False, truncation=True,
                               max_length=max_target_length)["input_ids"] + eos
            parts.append((prompt, answer))
        shared = 0
        while all(len(prompt) > shared for prompt, _ in parts) and len({p[shared] for p, _ in parts}) == 1:
            shared += 1
        shared = min(shared, min(len(prompt) for prompt, _ in parts) - 1)  # each block keeps >= 1 prompt token
        ids, positions, blocks = list(parts[0][0][:shared]), list(range(shared)), [-1] * shared
        for block, (number, (prompt, answer)) in enumerate(zip(numbers, parts)):
            start = len(ids)
            tail = prompt[shared:] + answer
            ids += tail
            positions += range(shared, shared + len(tail))
            blocks += [block] * len(tail)
            for offset in range(len(prompt) - shared, len(tail)):  # the answer's tokens carry the loss
                predictor = start + offset - 1
                targets.append((sequence, predictor, tail[offset], number))
        sequences.append((ids, positions, blocks))
    width = max(len(ids) for ids, _, _ in sequences)
    count = len(sequences)
    input_ids = torch.full((count, width), tokenizer.pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((count, width), dtype=torch.long)
    block_of = torch.full((count, width), -2, dtype=torch.long)  # -2: padding, -1: shared prompt
    for sequence, (ids, positions, blocks) in enumerate(sequences):
        input_ids[sequence, : len(ids)] = torch.tensor(ids)
        position_ids[sequence, : len(ids)] = torch.tensor(positions)
        block_of[sequence, : len(ids)] = torch.tensor(blocks)
    query, key = block_of[:, :, None], block_of[:, None, :]
    order = torch.arange(width)
    allowed = (order[None, :, None] >= order[None, None, :]) & (key != -2) & ((key == -1) | (key == query))
    allowed |= torch.eye(width, dtype=torch.bool)[None] & (query == -2)  # padding attends to itself (no NaN)
    columns = torch.tensor(targets, dtype=torch.long).T
    labels = torch.full((len(rows), 1), -100, dtype=torch.long)  # unused: the loss reads packed_targets
    return EncodedRows({"input_ids": input_ids, "position_ids": position_ids}, labels, [row.group for row in rows],
                       packed_targets=(columns[0], columns[1], columns[2], columns[3]), allowed=allowed)


def packed_attention(model: nn.Module, allowed: Tensor, position_ids: Tensor) -> Tensor | dict[str, Tensor]:
    """The 4D additive mask for ``allowed`` in the model's dtype; for models with sliding-window layers
    (Gemma3, Qwen2 with use_sliding_window), one per layer kind, the window measured in position ids."""
    dtype = next(model.parameters()).dtype
    def additive(mask: Tensor) -> Tensor:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min)[:, None]

    config = model.config
    layer_types = getattr(config, "layer_types", None) or []
    window = getattr(config, "sliding_window", None)
    if "sliding_attention" not in layer_types or not window:
        return additive(allowed)
    distance = position_ids[:, :, None] - position_ids[:, None, :]
    return {"full_attention": additive(allowed), "sliding_attention": additive(allowed & (distance < window))}


def _encode_with_decoder_prompts(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[TrainingRow], max_input_length: int, max_target_length: int
) -> EncodedRows:
    distinct: dict[str, int] = {}
    source_index = [distinct.setdefault(row.source, len(distinct)) for row in rows]
    inputs = tokenizer(list(distinct), padding=True, truncation=True, max_length=max_input_length, return_tensors="pt")
    prompts = [tokenizer(row.decoder_prompt, add_special_tokens=False)["input_ids"] if row.decoder_prompt else []
               for row in rows]
    targets = tokenizer([row.target for row in rows], truncation=True, max_length=max_target_length)["input_ids"]
    width = max(len(prompt) + len(target) for prompt, target in zip(prompts, targets))
    decoder_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for row, (prompt, target) in enumerate(zip(prompts, targets)):
        decoder_ids[row, : len(prompt) + len(target)] = torch.tensor(prompt + target)
        labels[row, len(prompt) : len(prompt) + len(target)] = torch.tensor(target)
    return EncodedRows({"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}, labels,
                       [row.group for row in rows], torch.tensor(source_index), decoder_ids)


def forward_inputs(model: nn.Module, encoded: EncodedRows, device: torch.device, is_encoder_decoder: bool) -> dict:
    """Keyword arguments for the model's forward pass over ``encoded`` (``model``: the unwrapped HF model).

    With decoder prompts the encoder runs here, once per distinct source, and every row reads its source's
    states: a multitask example's label row and rationale row share one encoder pass.
    """
    inputs = {key: tensor.to(device) for key, tensor in encoded.model_inputs.items()}
    if encoded.allowed is not None:
        inputs["attention_mask"] = packed_attention(model, encoded.allowed.to(device), inputs["position_ids"])
    if not is_encoder_decoder:
        return inputs
    decoder_sequences = encoded.decoder_ids if encoded.decoder_ids is not None else encoded.labels
    inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=decoder_sequences.to(device))
    if encoded.source_index is None:
        return inputs
    from transformers.modeling_outputs import BaseModelOutput

    index = encoded.source_index.to(device)
    states = model.get_encoder()(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    return {
        "encoder_outputs": BaseModelOutput(last_hidden_state=states.last_hidden_state[index]),
        "attention_mask": inputs["attention_mask"][index],
        "decoder_input_ids": inputs["decoder_input_ids"],
    }


@dataclass
class RowLosses:
    """One forward pass's losses, with the logits of the positions that carry a loss (and only those)."""

    row_loss: Tensor  # (R,) summed token loss per row
    row_tokens: Tensor  # (R,) target tokens per row
    logits: Tensor  # (N, V): the N loss positions
    # (R, L'): per row, the row of ``logits`` of each of its target tokens in order, -1 elsewhere (unpacked rows:
    # in the frame of the target positions, decoders shifted by one; packed rows: the k-th target token at k).
    index: Tensor

    def first(self, row: int, count: int) -> Tensor:
        """Logits (count, V) of the first ``count`` target tokens of one row."""
        chosen = self.index[row]
        return self.logits[chosen[chosen >= 0][:count]]


def target_mask(labels: Tensor, is_encoder_decoder: bool) -> Tensor:
    """(R, L'): where a target token is predicted, in the frame of the logits that predict it."""
    return labels != -100 if is_encoder_decoder else labels[:, 1:] != -100


def row_losses(
    model: nn.Module,
    output_layer: nn.Module | None,
    inputs: Mapping[str, Tensor],
    labels: Tensor,
    is_encoder_decoder: bool,
    packed: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
) -> RowLosses:
    """Run the model and take its per-row token losses, sending only the loss positions through the output layer.

    The output layer (hidden size x vocabulary) is the largest matrix product of a small student, and most of
    its positions in a batch are padding or prompt: a hook hands it the N hidden states that carry a loss
    instead of all R x L. transformers has no per-row switch for this (``logits_to_keep`` keeps the same
    positions in every row, and seq2seq models lack it). A model that does not call its output embeddings
    module gets the whole forward pass instead, and the same losses.
    """
    if packed is not None:
        return _packed_row_losses(model, output_layer, inputs, labels.shape[0], packed)
    wanted = target_mask(labels, is_encoder_decoder)
    positions = wanted if is_encoder_decoder else torch.nn.functional.pad(wanted, (0, 1))
    logits = loss_position_logits(model, output_layer, inputs, tuple(positions.shape), lambda t: t[positions])
    targets = labels[:, 1:][wanted] if not is_encoder_decoder else labels[wanted]
    losses = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    rows = wanted.nonzero(as_tuple=True)[0]
    row_loss = torch.zeros(labels.shape[0], dtype=losses.dtype, device=losses.device).index_add(0, rows, losses)
    index = torch.full(wanted.shape, -1, dtype=torch.long, device=wanted.device)
    index[wanted] = torch.arange(int(wanted.sum()), device=wanted.device)
    return RowLosses(row_loss, wanted.sum(dim=1), logits, index)


def loss_position_logits(model: nn.Module, output_layer: nn.Module | None, inputs: Mapping[str, Tensor],
                         frame: tuple[int, ...], pick: Callable[[Tensor], Tensor]) -> Tensor:
    """Logits (N, V) of the positions ``pick`` takes from a (rows, length, ...) tensor of shape ``frame``.

    A pre-hook hands the output layer only those hidden states; a model that never calls that module gets
    the whole forward pass, and the same positions are picked from its full logits.
    """
    handle = None
    if output_layer is not None:
        def keep_loss_positions(_module: nn.Module, args: tuple) -> tuple:
            hidden, *rest = args
            if hidden.dim() != 3 or tuple(hidden.shape[:2]) != frame:
                return args
            return (pick(hidden), *rest)

        handle = output_layer.register_forward_pre_hook(keep_loss_positions)
    try:
        logits = model(**inputs).logits
    finally:
        if handle is not None:
            handle.remove()
    return pick(logits) if logits.dim() == 3 else logits


def _packed_row_losses(model: nn.Module, output_layer: nn.Module | None, inputs: Mapping[str, Tensor], rows: int,
                       packed: tuple[Tensor, Tensor, Tensor, Tensor]) -> RowLosses:
    """Per-row losses of shared-prompt sequences: each target token is read at the position that predicts
    it in its own row's view (the last shared token predicts the first token of every block), so one
    position may serve several targets; only those positions go through the output layer."""
    device = inputs["input_ids"].device
    sequence, predictor, target, row = (tensor.to(device) for tensor in packed)
    logits = loss_position_logits(model, output_layer, inputs, tuple(inputs["input_ids"].shape),
                                  lambda t: t[sequence, predictor])
    losses = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
    row_loss = torch.zeros(rows, dtype=losses.dtype, device=device).index_add(0, row, losses)
    row_tokens = torch.bincount(row, minlength=rows)
    # The k-th target token of each row (the targets are listed in each row's order) at column k.
    starts = torch.cumsum(row_tokens, 0) - row_tokens
    order = torch.argsort(row, stable=True)
    index = torch.full((rows, max(int(row_tokens.max()), 1) if rows else 1), -1, dtype=torch.long, device=device)
    index[row[order], torch.arange(len(order), device=device) - starts[row[order]]] = order
    return RowLosses(row_loss, row_tokens, logits, index)


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
    label = group_loss(row_loss, row_tokens, groups, LABEL, totals.get(LABEL) if total_tokens else None)
    rationale = group_loss(row_loss, row_tokens, groups, RATIONALE, totals.get(RATIONALE) if total_tokens else None)
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
        if part.packed_targets is not None:
            counts = torch.bincount(part.packed_targets[3], minlength=len(part.groups)).tolist()
        else:
            labels = part.labels if is_encoder_decoder else part.labels[:, 1:]
            counts = (labels != -100).sum(dim=1).tolist()
        for group, count in zip(part.groups, counts):
            totals[group] = totals.get(group, 0) + count
    return totals


def pass_loss(
    model: nn.Module,
    part: EncodedRows,
    device: torch.device,
    is_encoder_decoder: bool,
    alpha: float,
    totals: Mapping[str, float] | None = None,
    base_model: nn.Module | None = None,
) -> tuple[Tensor, dict[str, float], RowLosses]:
    """One forward pass's share of a step's multitask loss, its parts, and the per-row losses (for a KD term).

    ``model`` is what runs the forward pass (possibly wrapped for data parallelism); ``base_model`` the
    Hugging Face model under it (default: ``model``), whose encoder and label shifting ``forward_inputs`` uses.
    ``totals``: the step's target tokens per group when the step has several passes (``group_token_totals``).
    """
    base = base_model if base_model is not None else model
    inputs = forward_inputs(base, part, device, is_encoder_decoder)
    losses = row_losses(model, base.get_output_embeddings(), inputs, part.labels.to(device), is_encoder_decoder,
                        part.packed_targets)
    loss, parts = multitask_loss(losses.row_loss, losses.row_tokens, part.groups, alpha, totals)
    return loss, parts, losses
