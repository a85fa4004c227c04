"""The teacher wrapper: encoding (answer mask, offsets into the input, truncation) and the attributed quantity."""

from __future__ import annotations

from pathlib import Path

import torch

from tokendistill.attribution.teacher import Teacher
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment


def example(text: str, identifier: str = "a") -> Example:
    return Example(identifier, (Segment("input", text),), "tool")


def test_encoding_masks_exactly_the_answer_tokens_and_maps_offsets_into_the_input(llama_dir: Path) -> None:
    teacher = Teacher(load_model(str(llama_dir), device="cpu", offsets=True), max_input_length=64)
    batch = teacher.encode([example("a hammer on the table"), example("blue", "b")], ["tool", "tool tool"])
    lengths = [len(teacher._answer_ids([answer])[0]) for answer in ("tool", "tool tool")]
    assert batch.answer_mask.sum(dim=1).tolist() == lengths
    for row, item in enumerate(batch.examples):
        spans = [tuple(span) for span in batch.offsets[row].tolist() if span[1] > span[0]]
        assert spans and all(0 <= start < end <= len(item.input) for start, end in spans)
        # The answer cue after the input ("\nAnswer:") maps to no input character.
        assert max(end for _, end in spans) <= len(item.input)


def test_truncation_is_counted(llama_dir: Path) -> None:
    teacher = Teacher(load_model(str(llama_dir), device="cpu", offsets=True), max_input_length=4)
    batch = teacher.encode([example("a hammer on the table near the window"), example("blue", "b")], ["tool"] * 2)
    assert batch.truncated == [True, False] and batch.input_ids.shape[1] == 4


def test_the_answer_log_prob_is_the_sum_of_its_token_log_probs(t5_dir: Path) -> None:
    teacher = Teacher(load_model(str(t5_dir), device="cpu", offsets=True), max_input_length=64)
    batch = teacher.encode([example("a hammer on the table")], ["tool"])
    with torch.no_grad():
        embeds = teacher.embed(batch.input_ids)
        total = teacher.answer_log_prob(embeds, batch.attention_mask, batch)
        logits = teacher.model(inputs_embeds=embeds, attention_mask=batch.attention_mask,
                               labels=batch.answer_ids.masked_fill(batch.answer_mask == 0, -100)).logits
    by_hand = torch.log_softmax(logits.float(), -1).gather(-1, batch.answer_ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(total, (by_hand * batch.answer_mask).sum(dim=1), atol=1e-5)
