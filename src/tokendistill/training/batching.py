"""Cutting one step's rows into forward passes of similar length: the same loss, less padding."""

from __future__ import annotations

import math
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from tokendistill.training.modes.base import TrainingRow

# What running one more forward pass costs, in padded tokens, by device type. Measured on a 2-core CPU with
# bench/train_throughput.py (--pass-costs): 64 lost up to 10% to DSS's two passes on real e-SNLI inputs
# (too many small passes for a 22M-parameter student), 2048 kept long LLM rationales and labels in one pass
# (0.84x); 512 was at or above DSS on both. On a GPU small passes leave the card idle, so the cost there is
# set higher (a guess: no GPU was at hand to measure it).
PASS_COST = {"cpu": 512.0}
DEFAULT_PASS_COST = 2048.0


def forward_batches(
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[TrainingRow],
    parts: int,
    by_length: bool,
    pass_cost: float = PASS_COST["cpu"],
) -> list[list[TrainingRow]]:
    """Split one step's rows into forward passes of at most ceil(rows / parts) rows each (``parts``: gradient
    accumulation).

    With ``by_length`` the rows are sorted by loss group and length, and cut where that costs least: a pass
    costs its padded area (inputs x longest input + rows x 1.5 x longest target) plus ``pass_cost`` tokens for
    running at all. So a long rationale does not pad every label row (one batch) nor the longest input every
    other input (DSS's two batches). Rows that read the same source through one encoder pass (decoder
    prompts) are kept together unless splitting them is cheaper. Any split gives the same step: the losses
    are normalised by the whole step's token counts.
    """
    cap = -(-len(rows) // parts)
    if not by_length:  # consecutive blocks: an example's rows stay in one pass
        return [list(rows[start : start + cap]) for start in range(0, len(rows), cap)]
    sources = [len(ids) for ids in tokenizer([row.source for row in rows], add_special_tokens=False)["input_ids"]]
    targets = [len(ids) for ids in tokenizer([row.target for row in rows], add_special_tokens=False)["input_ids"]]
    # Rows that share an encoder pass (decoder prompts: an example's rows read the same source) stay adjacent.
    shared = any(row.decoder_prompt or row.shared_prompt for row in rows)
    order = sorted(range(len(rows)), key=lambda i: (
        "" if shared else rows[i].group, sources[i], rows[i].source if shared else "", targets[i]))
    # Cheapest cut of the sorted rows into consecutive passes (dynamic programming: a few hundred rows a
    # step, at most ``cap`` per pass, so at most rows x cap candidate passes).
    best = [0.0] + [math.inf] * len(order)
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest_source = longest_target = 0
        encoded: set[str] = set()
        for start in range(end - 1, max(end - cap, 0) - 1, -1):
            longest_source = max(longest_source, sources[order[start]])
            longest_target = max(longest_target, targets[order[start]])
            encoded.add(rows[order[start]].source if shared else str(start))
            cost = (best[start] + pass_cost + len(encoded) * longest_source
                    + (end - start) * 1.5 * longest_target)
            if cost < best[end]:
                best[end], cut[end] = cost, start
    batches, end = [], len(order)
    while end > 0:
        batches.append([rows[i] for i in order[cut[end] : end]])
        end = cut[end]
    return batches[::-1]
