"""Loading models by path (as a hub id would load), devices, and the greedy reading of a decoder's answer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tokendistill.errors import UserError
from tokendistill.models import greedy_generate, load_model, resolve_device


def test_a_local_folder_loads_as_seq2seq_or_causal(t5_dir: Path, llama_dir: Path) -> None:
    assert load_model(str(t5_dir), device="cpu").is_encoder_decoder
    assert not load_model(str(llama_dir), device="cpu").is_encoder_decoder


def test_devices_resolve_or_fail_in_one_line() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="asked for a GPU"):
            resolve_device("cuda")


def test_a_decoders_answer_is_its_first_non_empty_line(llama_dir: Path) -> None:
    loaded = load_model(str(llama_dir), device="cpu")
    answers = greedy_generate(loaded.model, loaded.tokenizer, False, ["a hammer\nAnswer:", "blue\nAnswer:"], 32, 12)
    assert len(answers) == 2 and all("\n" not in answer and answer == answer.strip() for answer in answers)
    # Left padding: each row continues its own prompt, so an answer does not depend on its batch mates.
    alone = greedy_generate(loaded.model, loaded.tokenizer, False, ["blue\nAnswer:"], 32, 12)
    assert alone == answers[1:]
