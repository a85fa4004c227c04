"""Attribution methods: each scores every input token of a batch by its influence on log p(answer | input).

A method takes the teacher, a batch and options, and returns non-negative importance scores of shape (B, T)
(zero at padding). Gradient methods run one forward and one backward per batch (per chunk of interpolation
steps for integrated gradients); nothing loops over tokens in Python.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tokendistill.attribution.controls import matched_random_scores
from tokendistill.attribution.teacher import Teacher, TeacherBatch
from tokendistill.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodOptions:
    # Integrated gradients: interpolation steps from the baseline, the pad token's embedding and not zeros:
    # T5 and Llama normalise with RMSNorm, which is scale-invariant away from 0 and jumps at 0, so a zero
    # baseline puts a near-discontinuity at the start of the path and integrated gradients lose completeness.
    ig_steps: int = 20
    # Rows (examples x interpolation steps, or occluded variants) per forward pass: the memory budget.
    max_rows: int = 64


# word_pairs: per example, (token indices, word indices) from words.token_word_pairs; occlusion needs them.
WordPairs = Sequence[tuple[np.ndarray, np.ndarray]]
Method = Callable[[Teacher, TeacherBatch, WordPairs, MethodOptions], Tensor]
METHODS: Registry[Method] = Registry("attribution method")


def input_gradient(teacher: Teacher, batch: TeacherBatch) -> tuple[Tensor, Tensor, Tensor]:
    """Embeddings (B, T, H), d sum_b log p_b / d embeddings (B, T, H), and the log-probabilities (B,).

    Examples do not interact, so the gradient of the batch sum holds every example's own gradient.
    """
    embeds = teacher.embed(batch.input_ids).detach().requires_grad_(True)
    log_prob = teacher.answer_log_prob(embeds, batch.attention_mask, batch)
    (gradient,) = torch.autograd.grad(log_prob.sum(), embeds)
    return embeds.detach(), gradient, log_prob.detach()


def _masked(scores: Tensor, batch: TeacherBatch) -> Tensor:
    return (scores.float() * batch.attention_mask).detach()


@METHODS.register("saliency")
def saliency(teacher: Teacher, batch: TeacherBatch, word_pairs: WordPairs, options: MethodOptions) -> Tensor:
    """The paper's method: L2 norm over the hidden dimension of the gradient w.r.t. the input embeddings."""
    _, gradient, _ = input_gradient(teacher, batch)
    return _masked(gradient.float().norm(dim=-1), batch)


@METHODS.register("grad_x_input")
def grad_x_input(teacher: Teacher, batch: TeacherBatch, word_pairs: WordPairs, options: MethodOptions) -> Tensor:
    """L2 norm over the hidden dimension of gradient * embedding (the same reduction as saliency)."""
    embeds, gradient, _ = input_gradient(teacher, batch)
    return _masked((gradient.float() * embeds.float()).norm(dim=-1), batch)


def integrated_gradients_attributions(
    teacher: Teacher, batch: TeacherBatch, options: MethodOptions, endpoints: bool = True
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Signed per-token attributions (B, T) and log p at the input and at the baseline, each (B,).

    ``endpoints=False`` skips the two extra forwards that only a completeness check needs.

    Gauss-Legendre quadrature over the straight path from the baseline to the input; examples x steps are
    stacked into forwards of at most ``options.max_rows`` rows. By completeness, the attributions of an
    example sum to log p(input) - log p(baseline) up to the quadrature error.
    """
    embeds = teacher.embed(batch.input_ids).detach()
    # The baseline is the pad token's embedding at every position (Captum's and most papers' choice for text).
    pad_ids = torch.full_like(batch.input_ids, teacher.tokenizer.pad_token_id)
    baseline = teacher.embed(pad_ids).detach()
    if not baseline[0, 0].any():
        _warn_once("integrated gradients: this teacher's pad embedding is all zeros (an untrained padding row), "
                   "so the baseline is the zero vector, where RMSNorm jumps; attributions near it are "
                   "unreliable: raise --ig-steps and check completeness, or prefer saliency")
    nodes, weights = np.polynomial.legendre.leggauss(options.ig_steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=embeds.dtype, device=embeds.device)
    step_weights = torch.tensor(weights / 2, dtype=torch.float32, device=embeds.device)
    batch_size = embeds.shape[0]
    steps_per_chunk = max(1, options.max_rows // batch_size)
    summed_gradient = torch.zeros_like(embeds, dtype=torch.float32)
    for first in range(0, options.ig_steps, steps_per_chunk):
        chunk = alphas[first : first + steps_per_chunk]  # (S,)
        path = baseline.unsqueeze(0) + chunk.view(-1, 1, 1, 1) * (embeds - baseline).unsqueeze(0)  # (S, B, T, H)
        path = path.reshape(-1, *embeds.shape[1:]).requires_grad_(True)
        repeated = _repeat_batch(batch, len(chunk))
        log_prob = teacher.answer_log_prob(path, repeated.attention_mask, repeated)
        (gradient,) = torch.autograd.grad(log_prob.sum(), path)
        gradient = gradient.float().view(len(chunk), *embeds.shape)
        summed_gradient += (gradient * step_weights[first : first + len(chunk)].view(-1, 1, 1, 1)).sum(dim=0)
    attributions = ((embeds - baseline).float() * summed_gradient).sum(dim=-1) * batch.attention_mask
    if not endpoints:
        return attributions, None, None
    with torch.no_grad():
        at_input = teacher.answer_log_prob(embeds, batch.attention_mask, batch)
        at_baseline = teacher.answer_log_prob(baseline, batch.attention_mask, batch)
    return attributions, at_input.float(), at_baseline.float()


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def _repeat_batch(batch: TeacherBatch, times: int) -> TeacherBatch:
    """The batch stacked ``times`` times along the batch dimension (for interpolation steps)."""
    return TeacherBatch(
        examples=batch.examples * times,
        answers=batch.answers * times,
        input_ids=batch.input_ids.repeat(times, 1),
        attention_mask=batch.attention_mask.repeat(times, 1),
        offsets=batch.offsets * times,
        answer_ids=batch.answer_ids.repeat(times, 1),
        answer_mask=batch.answer_mask.repeat(times, 1),
        truncated=batch.truncated * times,
    )


@METHODS.register("integrated_gradients")
def integrated_gradients(
    teacher: Teacher, batch: TeacherBatch, word_pairs: WordPairs, options: MethodOptions
) -> Tensor:
    """Magnitude of each token's integrated-gradients attribution (summed over the hidden dimension)."""
    attributions, _, _ = integrated_gradients_attributions(teacher, batch, options, endpoints=False)
    return attributions.abs().detach()


@METHODS.register("occlusion")
@torch.no_grad()
def occlusion(teacher: Teacher, batch: TeacherBatch, word_pairs: WordPairs, options: MethodOptions) -> Tensor:
    """Drop in log p(answer) when one word is left out (its tokens masked from attention).

    Every token of a word carries the word's drop, so merging with ``max`` gives the drop itself.
    Needs only forward passes, so it works for any model.
    """
    embeds = teacher.embed(batch.input_ids)
    base = teacher.answer_log_prob(embeds, batch.attention_mask, batch).float()
    variants: list[tuple[int, np.ndarray]] = []  # (example row, its tokens of one word)
    for row, (tokens, words) in enumerate(word_pairs):
        for word in np.unique(words):
            variants.append((row, tokens[words == word]))
    scores = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=embeds.device)
    for first in range(0, len(variants), options.max_rows):
        chunk = variants[first : first + options.max_rows]
        rows = torch.tensor([row for row, _ in chunk], device=embeds.device)
        mask = batch.attention_mask[rows].clone()
        for position, (_, tokens) in enumerate(chunk):
            mask[position, torch.from_numpy(tokens).to(embeds.device)] = 0
        sub_batch = TeacherBatch(
            examples=[batch.examples[row] for row, _ in chunk],
            answers=[batch.answers[row] for row, _ in chunk],
            input_ids=batch.input_ids[rows],
            attention_mask=batch.attention_mask[rows],
            offsets=[batch.offsets[row] for row, _ in chunk],
            answer_ids=batch.answer_ids[rows],
            answer_mask=batch.answer_mask[rows],
            truncated=[batch.truncated[row] for row, _ in chunk],
        )
        occluded = teacher.answer_log_prob(embeds[rows], mask, sub_batch).float()
        drops = base[rows] - occluded
        for position, (row, tokens) in enumerate(chunk):
            scores[row, torch.from_numpy(tokens).to(embeds.device)] = drops[position].clamp(min=0)
    return scores


# Every token of a word carries the word's drop: merging by max gives the drop itself (sum would count it per token).
occlusion.merge = "max"  # type: ignore[attr-defined]


@METHODS.register("random")
def random_words(teacher: Teacher, batch: TeacherBatch, word_pairs: WordPairs, options: MethodOptions) -> Tensor:
    """A control, not an attribution: every word gets a random score, drawn from a generator seeded by the
    example's id (the same words whatever the batch). Training a student on these words tells how much of a
    multitask gain is the teacher's knowledge and how much the mere practice of copying input words.

    The score sits on the word's first token only, so that merging by sum or by max gives every word the
    same chance.
    """
    scores = torch.zeros(batch.input_ids.shape, dtype=torch.float32)
    for row, ((tokens, words), example) in enumerate(zip(word_pairs, batch.examples)):
        generator = np.random.default_rng(zlib.crc32(example.id.encode("utf-8")))
        unique_words, first = np.unique(words, return_index=True)
        scores[row, torch.from_numpy(tokens[first])] = torch.from_numpy(
            generator.random(len(unique_words)).astype(np.float32) + 1e-3
        )
    return scores.to(batch.input_ids.device)


@METHODS.register("random_matched")
def random_matched(teacher: Teacher, batch: TeacherBatch, word_pairs: WordPairs, options: MethodOptions) -> Tensor:
    """A control: the teacher's saliency, whose word ranking ``controls.matched_random_scores`` then redraws
    within segments (the word stage of this method: extraction applies it once the scores are words)."""
    return saliency(teacher, batch, word_pairs, options)


random_matched.word_stage = matched_random_scores  # type: ignore[attr-defined]
