"""Tiny random models built from configs, saved to disk and loaded back by path as a hub model would be."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import settings
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, LlamaConfig

from tokendistill.models import tiny_t5_config
from tokendistill.tasks.synthetic import DISTRACTORS, KEYWORDS
from tokendistill.training.modes import EXPLAIN_PREFIX, PREDICT_PREFIX
from tokendistill.vocab import build_word_tokenizer

# CI machines are shared and noisy: a per-example deadline would make property tests flaky, not stricter.
settings.register_profile("ci", deadline=None)
settings.load_profile("ci")

VOCABULARY_TEXT = " ".join(
    [*DISTRACTORS, *(w for words in KEYWORDS.values() for w in words), *KEYWORDS, PREDICT_PREFIX, EXPLAIN_PREFIX]
    + "Answer Choices : ( a b c d e ) ? . , ! ' Premise Hypothesis entailment neutral contradiction".split()
)


def _tokenizer():
    return build_word_tokenizer([VOCABULARY_TEXT])


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    folder = tmp_path_factory.mktemp("tiny-t5")
    model = AutoModelForSeq2SeqLM.from_config(tiny_t5_config(len(tokenizer), d_model=32, heads=4))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def llama_gold_words(tmp_path_factory: pytest.TempPathFactory, llama_dir: Path) -> Path:
    """The tiny Llama's top-2 words toward the gold label on 8 keywords rows: the rationales the training modes'
    end-to-end tests learn from (read only; a test that changes them copies the folder first)."""
    from tokendistill.cli import main

    folder = tmp_path_factory.mktemp("llama-gold-words") / "rationales"
    assert main(["extract", "--task", "keywords", "--device", "cpu", "--limit", "8", "--teacher", str(llama_dir),
                 "--output", str(folder), "--top-k", "2", "--target", "gold"]) == 0
    return folder


@pytest.fixture(scope="session")
def dss_data() -> Path:
    """The Distilling step-by-step data (shared/data/dss), or a skip where this checkout lacks it."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "dss"
    folder = Path(os.environ.get("TOKENDISTILL_DSS_DATA", default))
    if not (folder / "cqa").is_dir():
        pytest.skip(f"DSS data not found at {folder}; set TOKENDISTILL_DSS_DATA")
    return folder


def _save_tiny(folder: Path, config: object) -> Path:
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    model = auto.from_config(config)
    with torch.no_grad():
        # Random init leaves the padding row at zero; a trained model's is not, and integrated gradients start
        # from it (at the zero vector RMSNorm jumps, and no quadrature converges across a jump).
        embeddings = model.get_input_embeddings().weight
        embeddings[config.pad_token_id] = embeddings[config.pad_token_id + 2]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def architecture_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random BART, Qwen2 and Gemma3 models: the other teacher families the product names.

    transformers loads Qwen2's own tokenizer class for a qwen2 folder whatever the saved tokenizer says, which
    garbles the word-level test vocabulary into a few tokens: good for checking the model-side maths (which
    uses one tokenizer throughout), not for checking words.
    """
    from transformers import BartConfig, Gemma3TextConfig, Qwen2Config

    vocab = len(_tokenizer())
    special = {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 1}
    decoder = {"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128, **special}
    configs = {
        "bart": BartConfig(vocab_size=vocab, d_model=32, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_position_embeddings=128, decoder_start_token_id=1,
                           forced_eos_token_id=None, **special),
        "qwen2": Qwen2Config(**decoder),
        # Gemma3 scales its embeddings and soft-caps its logits: both must survive the answer-only path.
        "gemma3": Gemma3TextConfig(**decoder, head_dim=8, final_logit_softcapping=30.0, sliding_window=4),
    }
    return {name: _save_tiny(tmp_path_factory.mktemp(f"tiny-{name}"), config) for name, config in configs.items()}


@pytest.fixture(scope="session")
def gemma3_four_layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Gemma3 of four layers that alternate sliding-window and full attention."""
    from transformers import Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=len(_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
                              sliding_window=4, layer_types=["sliding_attention", "full_attention"] * 2,
                              pad_token_id=0, eos_token_id=1, bos_token_id=1)
    return _save_tiny(tmp_path_factory.mktemp("tiny-gemma3-4"), config)


# ----- grids (tests of the runner, the grid and the report) ------------------------------------------------
def write_text_task(folder: Path) -> Path:
    """A second task from local files: the keyword task's records as a plain `text` task."""
    from tokendistill.tasks.synthetic import generate_records

    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", 40), ("test", 16)):
        rows = [{"id": r["id"], "input": r["input"], "label": r["label"]} for r in generate_records(split, size, 5)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def grid_yaml(tmp_path: Path, teacher: Path, student: Path, **extra) -> Path:
    experiment = {
        "output": str(tmp_path / "grid"),
        "device": "cpu",
        "tasks": [
            {"name": "keywords", "train_sizes": [24], "test_limit": 12},
            {"name": "text", "data": str(write_text_task(tmp_path / "data")), "train_sizes": [24], "test_limit": 12},
        ],
        "teacher": {"model": str(teacher), "extract": {"batch_size": 8, "max_new_tokens": 3}},
        "student": {"model": str(student), "train": {"steps": 3, "batch_size": 4, "checkpoint_every": 2},
                    "evaluate": {"max_new_tokens": 3}},
        "modes": ["standard", "multitask"],
        "top_k": [2],
        "seeds": [0, 1],
        # Tiny random models learn nothing: the grid goes on, as these tests need, where a real one would stop.
        "competence": {"on_failure": "warn"},
        **extra,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path
