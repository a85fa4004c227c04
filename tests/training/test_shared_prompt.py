"""--task-marker shared_prompt: a decoder student's label and explanation rows packed into one sequence that
reads the input once give the same logits and loss as the two rows run apart."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, Qwen2Config

from conftest import _tokenizer
from tokendistill.cli import main
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.data import encode_rows, pass_loss
from tokendistill.training.modes import MODES, marker_after_input
from tokendistill.training.setup import packing_works

DECODER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 128, "pad_token_id": 0, "eos_token_id": 1,
           "bos_token_id": 1}


def family_config(family: str, vocab: int):
    if family == "llama":
        return LlamaConfig(vocab_size=vocab, **DECODER)
    if family == "qwen2":  # its sliding window on every layer, so the window matters
        return Qwen2Config(vocab_size=vocab, use_sliding_window=True, sliding_window=4, max_window_layers=0, **DECODER)
    # Gemma3: sliding and full layers, embedding scaling, attention and final logit soft-caps
    return Gemma3TextConfig(vocab_size=vocab, head_dim=8, sliding_window=4, final_logit_softcapping=30.0,
                            attn_logit_softcapping=20.0, layer_types=["sliding_attention", "full_attention"],
                            **DECODER)


def example_rows() -> list:
    texts = [("cat dog apple banana cherry", "entailment", ["dog", "apple"]),
             ("apple", "neutral", ["apple", "apple", "apple", "apple", "apple", "apple"]),
             ("banana cherry dog cat apple banana cherry dog cat", "contradiction", ["cat"]),
             ("dog cat", "neutral", [])]  # no rationale: a label row alone
    rows = []
    for number, (text, label, words) in enumerate(texts):
        example = Example(f"e{number}", (Segment("input", text),), label)
        rows += [marker_after_input(row) for row in MODES.get("multitask").rows(example, {"rationale": words})]
    return rows


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3"])
def test_packed_logits_and_losses_equal_the_separate_rows(family: str, kernel: str) -> None:
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = family_config(family, len(tokenizer))
    config._attn_implementation = kernel
    model = AutoModelForCausalLM.from_config(config).eval()
    rows = example_rows()
    packed = encode_rows(tokenizer, rows, False, 64, 16)
    separate = encode_rows(tokenizer, [marker_after_input(row, shared_prompt=False) for row in rows], False, 64, 16)
    assert packed.model_inputs["input_ids"].shape[0] == 4  # one sequence per example, not per row
    assert packed.model_inputs["input_ids"].numel() < separate.model_inputs["input_ids"].numel()
    with torch.no_grad():
        _, parts_packed, got = pass_loss(model, packed, torch.device("cpu"), False, 0.5)
        _, parts_separate, want = pass_loss(model, separate, torch.device("cpu"), False, 0.5)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.row_loss, want.row_loss, atol=1e-5, rtol=1e-5)
    assert got.row_tokens.tolist() == want.row_tokens.tolist()
    assert parts_packed == pytest.approx(parts_separate, abs=1e-6)


def test_rows_of_one_example_share_the_prompt_tokens() -> None:
    tokenizer = _tokenizer()
    rows = example_rows()[:2]
    packed = encode_rows(tokenizer, rows, False, 64, 16)
    input_ids = packed.model_inputs["input_ids"][0].tolist()
    prompt = tokenizer("cat dog apple banana cherry", add_special_tokens=False)["input_ids"]
    assert input_ids[: len(prompt)] == prompt and input_ids.count(prompt[0]) == 1  # the input once
    positions = packed.model_inputs["position_ids"][0].tolist()
    # The explanation block's positions continue from the end of the shared part, as if it were alone.
    shared = next(i for i, position in enumerate(positions[1:], 1) if position <= positions[i - 1])
    assert positions[shared] == positions.index(positions[shared]) >= len(prompt)


def test_the_packing_check_falls_back_with_a_warning_where_the_kernel_takes_no_mask(
    llama_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tokendistill.config import TrainConfig

    loaded = load_model(str(llama_dir), device="cpu")
    rows = [example_rows()[:2]]
    config = TrainConfig(task="keywords", student=str(llama_dir), output="unused", max_input_length=64)
    assert packing_works(loaded, rows, config)
    loaded.model.config._attn_implementation = "flash_attention_2"
    with caplog.at_level(logging.WARNING):
        assert not packing_works(loaded, rows, config)
    assert "two rows per example instead" in caplog.text


@pytest.mark.slow
def test_a_student_trained_with_a_shared_prompt_answers_as_evaluated(tmp_path: Path, llama_dir: Path) -> None:
    common = ["--task", "keywords", "--device", "cpu", "--limit", "16"]
    rationales = tmp_path / "rationales"
    assert main(["extract", *common, "--teacher", str(llama_dir), "--output", str(rationales), "--top-k", "2",
                 "--batch-size", "8", "--max-new-tokens", "2"]) == 0
    student = tmp_path / "student"
    assert main(["train", *common, "--student", str(llama_dir), "--output", str(student), "--mode", "multitask",
                 "--rationales", str(rationales), "--task-marker", "shared_prompt", "--steps", "80",
                 "--batch-size", "8", "--learning-rate", "1e-2"]) == 0
    info = json.loads((student / "tokendistill.json").read_text())
    assert info["task_marker"] == "shared_prompt" and info["predict_prefix"] == ""
    evaluation = tmp_path / "eval"
    assert main(["evaluate", *common, "--split", "train", "--model", str(student), "--output", str(evaluation),
                 "--max-new-tokens", "4"]) == 0
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.75  # it has learnt its 16 training examples, read after "\nAnswer:"


def test_shared_prompt_is_refused_for_a_seq2seq_student(tmp_path: Path, t5_dir: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--task", "keywords", "--device", "cpu", "--limit", "4", "--student", str(t5_dir),
                 "--output", str(tmp_path / "s"), "--mode", "multitask", "--rationales", str(tmp_path / "r"),
                 "--steps", "1", "--task-marker", "shared_prompt"])
    assert code == 2 and "--task-marker decoder" in capsys.readouterr().err
