"""LoRA: only the adapters learn, and the merged model computes what the adapted one did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from tokendistill.cli import main
from tokendistill.config import TrainConfig
from tokendistill.models import load_model
from tokendistill.training.setup import apply_lora


@pytest.mark.parametrize("model_fixture", ["t5_dir", "llama_dir"])
def test_lora_changes_only_adapters_and_merges_exactly(model_fixture: str, request: pytest.FixtureRequest) -> None:
    loaded = load_model(str(request.getfixturevalue(model_fixture)), device="cpu")
    before = {name: value.clone() for name, value in loaded.model.state_dict().items()}
    config = TrainConfig(task="keywords", student="x", output="y", lora_rank=4, lora_alpha=8)
    model = apply_lora(loaded.model, config, loaded.is_encoder_decoder)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    inputs = torch.randint(3, 50, (2, 7))
    for _ in range(3):
        output = model(input_ids=inputs, labels=inputs)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    changed_adapters = 0
    for name, value in model.named_parameters():
        if "lora_" in name:
            changed_adapters += int(name.endswith("lora_B.default.weight") and bool(value.abs().sum() > 0))
        else:
            base_name = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(value, before[base_name]), f"{name} changed"
    assert changed_adapters > 0, "LoRA B matrices start at zero and must have moved"

    model.eval()
    with torch.no_grad():
        adapted = model(input_ids=inputs, labels=inputs).logits
        merged = model.merge_and_unload()
        assert not any("lora_" in name for name, _ in merged.named_parameters())
        torch.testing.assert_close(merged(input_ids=inputs, labels=inputs).logits, adapted, rtol=1e-5, atol=1e-5)


def test_lora_training_saves_a_plain_merged_model(tmp_path: Path, llama_dir: Path) -> None:
    output = tmp_path / "lora"
    assert main(["train", "--task", "keywords", "--student", str(llama_dir), "--output", str(output), "--limit", "8",
                 "--steps", "3", "--batch-size", "4", "--lora-rank", "4", "--learning-rate", "1e-2",
                 "--device", "cpu"]) == 0
    assert not (output / "adapter_config.json").exists()
    plain = AutoModelForCausalLM.from_pretrained(output)
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    difference = [not torch.equal(a, b) for (_, a), (_, b) in zip(plain.named_parameters(), base.named_parameters())]
    assert any(difference), "the merged adapters should have changed some weights"
    assert json.loads((output / "tokendistill.json").read_text())["config"]["lora_rank"] == 4


def test_unknown_lora_targets_are_a_user_error(tmp_path: Path, t5_dir: Path) -> None:
    assert main(["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(tmp_path / "o"),
                 "--limit", "4", "--steps", "1", "--lora-rank", "2", "--lora-targets", "no_such_module",
                 "--device", "cpu"]) == 2
