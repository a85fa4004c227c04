"""An independent implementation agrees: Captum's Saliency and InputXGradient pick the same top-5 tokens."""

from __future__ import annotations

import pytest
import torch

from tokendistill.attribution.methods import METHODS, MethodOptions
from tokendistill.attribution.teacher import Teacher
from tokendistill.attribution.words import split_words, token_word_pairs
from tokendistill.models import load_model
from tokendistill.tasks import get_task, load_examples

captum_attr = pytest.importorskip("captum.attr")


@pytest.mark.parametrize("model_fixture", ["t5_dir", "llama_dir"])
@pytest.mark.parametrize(("method", "captum_class"), [("saliency", "Saliency"), ("grad_x_input", "InputXGradient")])
def test_captum_gives_the_same_top_5_tokens(
    model_fixture: str, method: str, captum_class: str, request: pytest.FixtureRequest
) -> None:
    teacher = Teacher(load_model(str(request.getfixturevalue(model_fixture)), device="cpu", offsets=True))
    examples = load_examples(get_task("keywords"), "train", limit=6)
    batch = teacher.encode(examples, [example.target for example in examples])
    pairs = [token_word_pairs(offsets, split_words(e)) for offsets, e in zip(batch.offsets, examples)]
    ours = METHODS.get(method)(teacher, batch, pairs, MethodOptions())

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        return teacher.answer_log_prob(embeds, batch.attention_mask, batch)

    attributor = getattr(captum_attr, captum_class)(forward)
    embeds = teacher.embed(batch.input_ids).detach()
    kwargs = {"abs": False} if captum_class == "Saliency" else {}
    theirs = attributor.attribute(embeds, **kwargs).norm(dim=-1) * batch.attention_mask  # the same reduction

    torch.testing.assert_close(ours, theirs.float(), rtol=1e-4, atol=1e-6)
    for row in range(len(examples)):
        assert ours[row].topk(5).indices.sort().values.tolist() == theirs[row].topk(5).indices.sort().values.tolist()
