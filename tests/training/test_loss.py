"""The multitask loss is alpha * label loss + (1 - alpha) * rationale loss, each as its own forward would give."""

from pathlib import Path

import pytest
import torch

from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.data import encode_rows, multitask_loss, token_losses
from tokendistill.training.modes import MODES, TrainingRow

EXAMPLE = Example("e", (Segment("input", "the tiger went near the river"),), "animal")
RATIONALE = {"rationale": ["tiger", "river"]}


def test_modes_build_their_rows() -> None:
    assert MODES.get("standard").rows(EXAMPLE, None) == [
        TrainingRow("the tiger went near the river", "animal", "label")
    ]
    assert MODES.get("multitask").rows(EXAMPLE, RATIONALE) == [
        TrainingRow("predict: the tiger went near the river", "animal", "label"),
        TrainingRow("explain: the tiger went near the river", "tiger river", "rationale"),
    ]


@pytest.mark.parametrize("family", ["t5", "llama"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_multitask_loss_is_the_weighted_sum_of_separate_losses(
    family: str, alpha: float, t5_dir: Path, llama_dir: Path
) -> None:
    loaded = load_model(str(t5_dir if family == "t5" else llama_dir), device="cpu")
    examples = [
        EXAMPLE,
        Example("f", (Segment("input", "a small yellow truck"),), "vehicle"),
    ]
    rationales = [RATIONALE, {"rationale": ["truck"]}]
    rows = [row for ex, r in zip(examples, rationales) for row in MODES.get("multitask").rows(ex, r)]

    def model_loss(selected: list[TrainingRow]) -> torch.Tensor:
        """The model's own mean token loss on one group, in a forward pass of its own."""
        encoded = encode_rows(loaded.tokenizer, selected, loaded.is_encoder_decoder, 64, 16)
        return loaded.model(**encoded.model_inputs, labels=encoded.labels).loss

    expected = alpha * model_loss([r for r in rows if r.group == "label"]) + (1 - alpha) * model_loss(
        [r for r in rows if r.group == "rationale"]
    )
    encoded = encode_rows(loaded.tokenizer, rows, loaded.is_encoder_decoder, 64, 16)
    inputs = dict(encoded.model_inputs)
    if loaded.is_encoder_decoder:
        inputs["decoder_input_ids"] = loaded.model.prepare_decoder_input_ids_from_labels(labels=encoded.labels)
    row_loss, row_tokens = token_losses(loaded.model(**inputs).logits, encoded.labels, loaded.is_encoder_decoder)
    loss, parts = multitask_loss(row_loss, row_tokens, encoded.groups, alpha)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    assert set(parts) == {"label_loss", "rationale_loss"}
