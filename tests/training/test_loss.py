"""The multitask loss is alpha * label loss + (1 - alpha) * rationale loss, each as its own forward would give."""

from pathlib import Path

import pytest
import torch

from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.data import encode_rows, multitask_loss, row_losses
from tokendistill.training.modes import MODES, TrainingRow


def full_logit_losses(logits: torch.Tensor, labels: torch.Tensor, is_encoder_decoder: bool):
    """Per-row summed token loss and token count from every position's logits: the plain computation."""
    if not is_encoder_decoder:
        logits, labels = logits[:, :-1], labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    return losses.sum(dim=1), (labels != -100).sum(dim=1)


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
    losses = row_losses(loaded.model, loaded.model.get_output_embeddings(), inputs, encoded.labels,
                        loaded.is_encoder_decoder)
    loss, parts = multitask_loss(losses.row_loss, losses.row_tokens, encoded.groups, alpha)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    assert set(parts) == {"label_loss", "rationale_loss"}


@pytest.mark.parametrize("family", ["t5", "llama", "bart", "qwen2", "gemma3"])
def test_only_loss_positions_go_through_the_output_layer(
    family: str, t5_dir: Path, llama_dir: Path, architecture_dirs: dict[str, Path]
) -> None:
    folder = {"t5": t5_dir, "llama": llama_dir}.get(family) or architecture_dirs[family]
    loaded = load_model(str(folder), device="cpu")
    examples = [EXAMPLE, Example("f", (Segment("input", "a small yellow truck"),), "vehicle")]
    rationales = [RATIONALE, {"rationale": ["small", "yellow", "truck"]}]
    rows = [row for ex, r in zip(examples, rationales) for row in MODES.get("multitask").rows(ex, r)]
    encoded = encode_rows(loaded.tokenizer, rows, loaded.is_encoder_decoder, 64, 16)
    inputs = dict(encoded.model_inputs)
    if loaded.is_encoder_decoder:
        inputs["decoder_input_ids"] = loaded.model.prepare_decoder_input_ids_from_labels(labels=encoded.labels)
    with torch.no_grad():
        full_logits = loaded.model(**inputs).logits
        losses = row_losses(loaded.model, loaded.model.get_output_embeddings(), inputs, encoded.labels,
                            loaded.is_encoder_decoder)
        # A model that never calls its output embeddings module: the same losses from the full logits.
        fallback = row_losses(loaded.model, torch.nn.Identity(), inputs, encoded.labels, loaded.is_encoder_decoder)
    row_loss, row_tokens = full_logit_losses(full_logits, encoded.labels, loaded.is_encoder_decoder)
    targets = int(row_tokens.sum())
    assert losses.logits.shape == (targets, full_logits.shape[-1])  # the output layer saw the loss positions only
    assert targets < full_logits.shape[0] * full_logits.shape[1]  # padding (and prompts) left out
    for got in (losses, fallback):
        torch.testing.assert_close(got.row_loss, row_loss, rtol=1e-5, atol=1e-5)
        assert got.row_tokens.tolist() == row_tokens.tolist()
    # Row 1's target positions map to their own logits.
    labels = encoded.labels if loaded.is_encoder_decoder else encoded.labels[:, 1:]
    positions = (labels[1] != -100).nonzero().squeeze(-1)
    shifted = full_logits if loaded.is_encoder_decoder else full_logits[:, :-1]
    torch.testing.assert_close(losses.first(1, len(positions)), shifted[1, positions], rtol=1e-4, atol=1e-4)
