"""Each method against an independent computation on tiny random models (seq2seq and decoder-only)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from tokendistill.attribution.methods import (
    METHODS,
    MethodOptions,
    integrated_gradients_attributions,
)
from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import split_words, token_word_pairs
from tokendistill.errors import UserError
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment

TEXTS = [
    "the quiet tiger went near the river",
    "a small truck",
    "yesterday the teacher found a violin beside the old blue door",
]
ANSWERS = ["animal", "vehicle tool", "instrument"]


def examples() -> list[Example]:
    return [Example(f"e{i}", (Segment("input", text),), answer) for i, (text, answer) in enumerate(zip(TEXTS, ANSWERS))]


@pytest.fixture(params=["t5", "llama", "bart", "qwen2", "gemma3"])
def teacher(request: pytest.FixtureRequest, t5_dir: Path, llama_dir: Path) -> Teacher:
    folders = {"t5": t5_dir, "llama": llama_dir}
    folder = folders.get(request.param) or request.getfixturevalue("architecture_dirs")[request.param]
    return Teacher(load_model(str(folder), device="cpu", offsets=True))


def reference_log_prob_and_gradient(teacher: Teacher, example: Example, answer: str) -> tuple[float, torch.Tensor]:
    """One example at a time, unpadded, through the model's own loss over the whole vocabulary."""
    model, tokenizer = teacher.model, teacher.tokenizer
    prompt = tokenizer(example.input + teacher.prompt_suffix, return_tensors="pt")["input_ids"]
    if teacher.is_encoder_decoder:
        labels = tokenizer(answer, return_tensors="pt")["input_ids"]
        embeds = model.get_input_embeddings()(prompt).detach().requires_grad_(True)
        loss = model(inputs_embeds=embeds, labels=labels).loss
        log_prob = -loss * labels.shape[1]
        (gradient,) = torch.autograd.grad(log_prob, embeds)
        return float(log_prob.detach()), gradient[0]
    answer_ids = tokenizer(" " + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([prompt, answer_ids], dim=1)
    labels = torch.cat([torch.full_like(prompt, -100), answer_ids], dim=1)
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    loss = model(inputs_embeds=embeds, labels=labels).loss
    log_prob = -loss * answer_ids.shape[1]
    (gradient,) = torch.autograd.grad(log_prob, embeds)
    return float(log_prob.detach()), gradient[0, : prompt.shape[1]]


def test_answer_log_prob_matches_the_models_own_loss(teacher: Teacher) -> None:
    batch = teacher.encode(examples(), ANSWERS)
    log_prob = teacher.answer_log_prob(teacher.embed(batch.input_ids), batch.attention_mask, batch)
    for row, example in enumerate(examples()):
        expected, _ = reference_log_prob_and_gradient(teacher, example, ANSWERS[row])
        assert float(log_prob[row]) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("method", ["saliency", "grad_x_input"])
def test_gradient_methods_match_per_example_autograd(teacher: Teacher, method: str) -> None:
    batch = teacher.encode(examples(), ANSWERS)
    scores = METHODS.get(method)(teacher, batch, [], MethodOptions())
    for row, example in enumerate(examples()):
        _, gradient = reference_log_prob_and_gradient(teacher, example, ANSWERS[row])
        length = gradient.shape[0]
        if method == "saliency":
            expected = gradient.norm(dim=-1)
        else:
            ids = batch.input_ids[row, :length]
            expected = (gradient * teacher.embed(ids)).norm(dim=-1)
        torch.testing.assert_close(scores[row, :length], expected.detach(), atol=1e-5, rtol=1e-4)
        assert torch.all(scores[row, length:] == 0)  # padding scores nothing


def test_integrated_gradients_are_complete(teacher: Teacher) -> None:
    batch = teacher.encode(examples(), ANSWERS)
    # 64 steps for the T5; the random tiny Llama's log-probability moves steeply just off its all-pad baseline
    # (measured: 64 steps miss by up to 0.02 nats, 256 steps by 1e-6), so it gets a finer path.
    steps = 64 if teacher.is_encoder_decoder else 256
    attributions, at_input, at_baseline = integrated_gradients_attributions(
        teacher, batch, MethodOptions(ig_steps=steps, max_rows=512)
    )
    difference = at_input - at_baseline
    torch.testing.assert_close(attributions.sum(dim=1), difference, rtol=0.02, atol=1e-3)


def test_integrated_gradients_chunking_does_not_change_the_result(teacher: Teacher) -> None:
    batch = teacher.encode(examples(), ANSWERS)
    whole, _, _ = integrated_gradients_attributions(teacher, batch, MethodOptions(ig_steps=8, max_rows=64))
    chunked, _, _ = integrated_gradients_attributions(teacher, batch, MethodOptions(ig_steps=8, max_rows=3))
    torch.testing.assert_close(whole, chunked, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_occlusion_matches_leaving_each_word_out(teacher: Teacher) -> None:
    batch = teacher.encode(examples(), ANSWERS)
    words = [split_words(example) for example in examples()]
    pairs = [token_word_pairs(offsets, w) for offsets, w in zip(batch.offsets, words)]
    scores = METHODS.get("occlusion")(teacher, batch, pairs, MethodOptions(max_rows=5))
    embeds = teacher.embed(batch.input_ids)
    base = teacher.answer_log_prob(embeds, batch.attention_mask, batch)
    row = 2
    tokens, word_index = pairs[row]
    for word in np.unique(word_index):
        mask = batch.attention_mask.clone()
        mask[row, torch.from_numpy(tokens[word_index == word])] = 0
        drop = base[row] - teacher.answer_log_prob(embeds, mask, batch)[row]
        for token in tokens[word_index == word]:
            assert float(scores[row, token]) == pytest.approx(max(float(drop), 0.0), abs=1e-5)


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(UserError, match="grad_x_input, integrated_gradients, occlusion, random, random_matched, saliency"):
        METHODS.get("lime")


def test_results_do_not_depend_on_batch_composition(teacher: Teacher) -> None:
    together = METHODS.get("saliency")(teacher, teacher.encode(examples(), ANSWERS), [], MethodOptions())
    alone = METHODS.get("saliency")(teacher, teacher.encode(examples()[1:2], ANSWERS[1:2]), [], MethodOptions())
    length = int(alone.shape[1])
    torch.testing.assert_close(together[1, :length], alone[0], atol=1e-5, rtol=1e-4)


def _word_pairs(batch, examples_):  # noqa: ANN001, ANN202
    return [token_word_pairs(offsets, split_words(ex)) for offsets, ex in zip(batch.offsets, examples_)]


@pytest.fixture
def t5_teacher(t5_dir: Path) -> Teacher:
    """The random control never runs the model: one family is enough."""
    return Teacher(load_model(str(t5_dir), device="cpu", offsets=True))


def test_random_control_scores_each_word_once_the_same_in_any_batch(t5_teacher: Teacher) -> None:
    teacher = t5_teacher
    method = METHODS.get("random")
    every = examples()
    batch = teacher.encode(every, ANSWERS)
    together = method(teacher, batch, _word_pairs(batch, every), MethodOptions())
    for row, example in enumerate(every):
        alone_batch = teacher.encode([example], [ANSWERS[row]])
        alone = method(teacher, alone_batch, _word_pairs(alone_batch, [example]), MethodOptions())
        width = alone.shape[1]
        torch.testing.assert_close(together[row, :width], alone[0])
        tokens, words = _word_pairs(batch, every)[row]
        # One scored token per word, on its first token.
        assert int((together[row] > 0).sum()) == len(np.unique(words))


def test_random_control_picks_every_word_equally_often(t5_teacher: Teacher) -> None:
    teacher = t5_teacher
    text = "the quiet tiger went near the river"
    many = [Example(f"id{i}", (Segment("input", text),), "animal") for i in range(300)]
    batch = teacher.encode(many, ["animal"] * len(many))
    pairs = _word_pairs(batch, many)
    scores = METHODS.get("random")(teacher, batch, pairs, MethodOptions())
    tokens, words = pairs[0]
    top_words = words[np.searchsorted(tokens, scores.argmax(dim=1).numpy())]
    shares = np.bincount(top_words, minlength=len(split_words(many[0]))) / len(many)
    assert shares.min() > 0.05 and shares.max() < 0.25  # 7 words: 1/7 = 0.14 each


def test_integrated_gradients_warn_when_the_pad_baseline_is_the_zero_vector(
    llama_dir: Path, architecture_dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from tokendistill.attribution import methods

    for folder, zero_pad in ((llama_dir, True), (architecture_dirs["gemma3"], False)):
        methods._warned.clear()
        caplog.clear()
        teacher = Teacher(load_model(str(folder), device="cpu", offsets=True))
        batch = teacher.encode(examples(), ANSWERS)
        with caplog.at_level("WARNING"):
            METHODS.get("integrated_gradients")(teacher, batch, [], MethodOptions(ig_steps=2))
        assert ("pad embedding is all zeros" in caplog.text) == zero_pad
