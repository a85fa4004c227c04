"""One interface over seq2seq and decoder-only teachers: encode, generate, and log p(answer | input embeddings)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tokendistill.models import LoadedModel, greedy_generate
from tokendistill.tasks.base import ANSWER_CUE, Example

log = logging.getLogger(__name__)


@dataclass
class TeacherBatch:
    """A batch ready for attribution. Shapes: B examples, T input tokens, A answer tokens."""

    examples: list[Example]
    answers: list[str]
    input_ids: Tensor  # (B, T), right-padded
    attention_mask: Tensor  # (B, T)
    offsets: list[np.ndarray]  # per example (T, 2) character spans into example.input; (0, 0) for non-text
    answer_ids: Tensor  # (B, A), right-padded with the pad id
    answer_mask: Tensor  # (B, A)
    truncated: list[bool]  # per example: was the input cut to the length limit


def chat_wrapping(tokenizer: object, cue: str) -> tuple[str, str]:
    """The text an instruct model's chat template puts before and after a user message (with ``cue`` appended
    to the message), found by templating a sentinel."""
    from tokendistill.errors import UserError

    if not getattr(tokenizer, "chat_template", None):
        raise UserError("--chat-template: this teacher's tokenizer has no chat template; leave the option off")
    sentinel = "\u2063TOKENDISTILL\u2063"
    text = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        [{"role": "user", "content": sentinel + cue}], add_generation_prompt=True, tokenize=False
    )
    prefix, found, suffix = text.partition(sentinel)
    if not found:
        raise UserError("--chat-template: the chat template changes the message text; leave the option off")
    return prefix, suffix


class Teacher:
    """Wraps a loaded model. Parameters are frozen: attribution needs gradients w.r.t. inputs only."""

    def __init__(
        self,
        loaded: LoadedModel,
        max_input_length: int = 512,
        prompt_suffix: str | None = None,
        chat_template: bool = False,
    ) -> None:
        self.model = loaded.model.eval().requires_grad_(False)
        self.tokenizer = loaded.tokenizer
        self.is_encoder_decoder = loaded.is_encoder_decoder
        self.name = loaded.name
        self.max_input_length = max_input_length
        # A decoder needs a cue that the answer comes next; the cue lies outside the input text, so it never
        # becomes a rationale word.
        self.prompt_suffix = prompt_suffix if prompt_suffix is not None else ("" if self.is_encoder_decoder else ANSWER_CUE)
        self.prompt_prefix = ""
        if chat_template:
            self.prompt_prefix, self.prompt_suffix = chat_wrapping(self.tokenizer, self.prompt_suffix)

    def prompt(self, example: Example) -> str:
        return self.prompt_prefix + example.input + self.prompt_suffix

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----- encoding -----------------------------------------------------------------------------------------
    def _answer_ids(self, answers: Sequence[str]) -> list[list[int]]:
        if self.is_encoder_decoder:
            # The seq2seq answer ends with EOS, as the teacher's own generation does.
            return [self.tokenizer(answer)["input_ids"] for answer in answers]
        return [self.tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"] for answer in answers]

    def encode(self, examples: Sequence[Example], answers: Sequence[str]) -> TeacherBatch:
        texts = [self.prompt(example) for example in examples]
        full_lengths = [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_input_length,
            return_offsets_mapping=True,
            return_tensors="np",
        )
        truncated = [length > self.max_input_length for length in full_lengths]
        offsets = []
        for example, row in zip(examples, encoded["offset_mapping"]):
            # Offsets into the input text: the chat wrapping and the answer cue around it are not input words.
            row = row.astype(np.int64) - len(self.prompt_prefix)
            row[(row[:, 0] < 0) | (row[:, 0] >= len(example.input))] = 0
            row = row.clip(min=0)
            offsets.append(row)
        answer_ids = self._answer_ids(answers)
        width = max(1, max(len(ids) for ids in answer_ids))
        pad = self.tokenizer.pad_token_id
        answer_tensor = torch.full((len(answers), width), pad, dtype=torch.long)
        answer_mask = torch.zeros((len(answers), width), dtype=torch.long)
        for row, ids in enumerate(answer_ids):
            answer_tensor[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            answer_mask[row, : len(ids)] = 1
        device = self.device
        return TeacherBatch(
            examples=list(examples),
            answers=list(answers),
            input_ids=torch.from_numpy(encoded["input_ids"]).to(device),
            attention_mask=torch.from_numpy(encoded["attention_mask"]).to(device),
            offsets=offsets,
            answer_ids=answer_tensor.to(device),
            answer_mask=answer_mask.to(device),
            truncated=truncated,
        )

    # ----- the attributed quantity --------------------------------------------------------------------------
    def input_embeddings(self) -> torch.nn.Module:
        if self.is_encoder_decoder:
            return self.model.get_encoder().get_input_embeddings()
        return self.model.get_input_embeddings()

    def embed(self, input_ids: Tensor) -> Tensor:
        """(B, T) -> (B, T, H) as the model itself embeds them (scaling included)."""
        return self.input_embeddings()(input_ids)

    def answer_logits(self, embeds: Tensor, attention_mask: Tensor, batch: TeacherBatch) -> Tensor:
        """(B, A, V): the logits that predict each answer token, the answer teacher-forced."""
        if self.is_encoder_decoder:
            labels = batch.answer_ids.masked_fill(batch.answer_mask == 0, -100)
            decoder_input_ids = self.model.prepare_decoder_input_ids_from_labels(labels=labels)
            return self.model(
                inputs_embeds=embeds, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids
            ).logits
        return self._causal_answer_logits(embeds, attention_mask, batch)

    def answer_log_prob(self, embeds: Tensor, attention_mask: Tensor, batch: TeacherBatch) -> Tensor:
        """log p(answer | input) per example, (B,): the sum of the answer tokens' log-probabilities."""
        logits = self.answer_logits(embeds, attention_mask, batch)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        token_log_probs = log_probs.gather(-1, batch.answer_ids.unsqueeze(-1)).squeeze(-1)  # (B, A)
        return (token_log_probs * batch.answer_mask).sum(dim=-1)

    def _causal_answer_logits(self, embeds: Tensor, attention_mask: Tensor, batch: TeacherBatch) -> Tensor:
        """Logits at the answer positions only (B, A, V): the output layer never sees the prompt positions."""
        hidden, answer_positions = self.causal_hidden_states(embeds, attention_mask, batch)
        answer_hidden = hidden.gather(1, answer_positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return self.output_logits(answer_hidden)

    def causal_hidden_states(self, embeds: Tensor, attention_mask: Tensor, batch: TeacherBatch) -> tuple[Tensor, Tensor]:
        """Last hidden states of prompt + answer (B, T + A, H), and the positions whose states predict the answer
        tokens (B, A)."""
        batch_size, prompt_width, _ = embeds.shape
        answer_width = batch.answer_ids.shape[1]
        prompt_lengths = batch.attention_mask.sum(dim=1)  # real prompt tokens per row (right padding)
        answer_embeds = self.embed(batch.answer_ids)
        # Lay each row out as prompt tokens, then answer tokens, then padding, with one differentiable gather.
        combined = torch.cat([embeds, answer_embeds], dim=1)  # (B, T + A, H)
        positions = torch.arange(prompt_width + answer_width, device=embeds.device).expand(batch_size, -1)
        offset_in_answer = positions - prompt_lengths.unsqueeze(1)
        source = torch.where(
            positions < prompt_lengths.unsqueeze(1),
            positions,
            prompt_width + offset_in_answer.clamp(0, answer_width - 1),
        )
        sequence = combined.gather(1, source.unsqueeze(-1).expand(-1, -1, combined.shape[-1]))
        answer_lengths = batch.answer_mask.sum(dim=1)
        keep = positions < (prompt_lengths + answer_lengths).unsqueeze(1)
        # Occlusion passes a mask with words switched off: carry those zeros into the prompt part.
        prompt_mask = attention_mask.gather(1, source.clamp(max=prompt_width - 1))
        sequence_mask = torch.where(positions < prompt_lengths.unsqueeze(1), prompt_mask, keep.long())
        base_model = getattr(self.model, self.model.base_model_prefix)
        hidden = base_model(inputs_embeds=sequence, attention_mask=sequence_mask).last_hidden_state
        # The hidden state before answer token j predicts it.
        answer_positions = prompt_lengths.unsqueeze(1) - 1 + torch.arange(answer_width, device=embeds.device)
        return hidden, answer_positions

    def output_logits(self, hidden: Tensor) -> Tensor:
        """A decoder's output layer (soft-capped where the model does so, as Gemma does)."""
        logits = self.model.get_output_embeddings()(hidden)
        softcap = getattr(self.model.config, "final_logit_softcapping", None)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    # ----- the teacher's own answer -------------------------------------------------------------------------
    def generate(self, examples: Sequence[Example], max_new_tokens: int = 32) -> list[str]:
        prompts = [self.prompt(example) for example in examples]
        return greedy_generate(
            self.model, self.tokenizer, self.is_encoder_decoder, prompts, self.max_input_length, max_new_tokens
        )
