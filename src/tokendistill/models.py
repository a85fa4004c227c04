"""Loading teachers and students by hub id or local path, and picking the device."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tokendistill.errors import UserError

log = logging.getLogger(__name__)

Init = Literal["pretrained", "random"]


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    is_encoder_decoder: bool
    name: str


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without a GPU is a user error, not a crash."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for a GPU, but torch sees none; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from None


def _split_gguf(name: str) -> tuple[str, str | None]:
    path = Path(name)
    if path.suffix == ".gguf":
        if importlib.util.find_spec("gguf") is None:
            raise UserError(f"{name} is a GGUF checkpoint, which needs the gguf package: pip install gguf")
        return str(path.parent), path.name
    return name, None


def answer_length(tokenizer: Any, examples: Any, default: int) -> int:
    """How many new tokens an answer needs: a closed-set task's longest label in the tokenizer's tokens, plus one
    (the end of the answer); ``default`` for open answers. A one-word label needs a few, not 32 or 64."""
    labels = {choice for example in examples for choice in (example.choices or ())}
    if not labels or not all(example.choices for example in examples):
        return default
    return 1 + max(len(tokenizer(" " + label, add_special_tokens=False)["input_ids"]) for label in labels)


def refuse_remote_code(folder: str, trusted: bool = False) -> None:
    """A local model folder whose config or tokenizer config names its own Python classes (``auto_map``) is refused
    unless ``trusted`` (--trust-remote-code): tokendistill runs no code shipped in a model folder unasked (it passes
    trust_remote_code=False everywhere, and says so in one line before transformers would ask)."""
    if trusted:
        return
    for name in ("config.json", "tokenizer_config.json"):
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # transformers' own loading reports a damaged file
        if isinstance(held, dict) and held.get("auto_map"):
            raise UserError(f"{path} names code of its own (auto_map); tokendistill runs no code from a model folder "
                            "unless asked: use a model transformers supports natively, or pass --trust-remote-code "
                            "if you trust that folder's code")


def load_model(
    name: str,
    *,
    init: Init = "pretrained",
    device: str = "auto",
    dtype: torch.dtype | None = None,
    offsets: bool = False,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Model and tokenizer from a hub id, a local folder or a ``.gguf`` file.

    ``init="random"`` builds the architecture from the folder's config with fresh weights (tests, the demo,
    from-scratch teachers). ``offsets=True`` insists on a fast tokenizer, which attribution needs to map
    tokens back to characters.
    """
    folder, gguf_file = _split_gguf(name)
    refuse_remote_code(folder, trust_remote_code)
    # No code from a model folder runs unasked: transformers would otherwise ask on a terminal, and run it on "y".
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code, **({"gguf_file": gguf_file} if gguf_file else {})}
    try:
        config = AutoConfig.from_pretrained(folder, **extra)
        tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
    except (OSError, ValueError) as error:
        # ValueError: a config.json without a known model_type, or a tokenizer that cannot be built
        if Path(folder).exists():
            raise UserError(f"cannot load a model from {folder}: {str(error).splitlines()[0][:200]}; pass a "
                            "folder saved with save_pretrained (its config.json names a model_type)") from None
        raise UserError(
            f"cannot load model {name!r}: it is not a local folder, and the Hugging Face hub cannot be reached "
            "(offline?); pass a local path to a folder saved with save_pretrained"
        ) from None
    if offsets and not tokenizer.is_fast:
        raise UserError(f"the tokenizer of {name} is not a fast tokenizer; attribution needs character offsets")
    is_encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    model_class = AutoModelForSeq2SeqLM if is_encoder_decoder else AutoModelForCausalLM
    if init == "random":
        model = model_class.from_config(config, trust_remote_code=trust_remote_code)
    else:
        try:
            model = model_class.from_pretrained(folder, dtype=dtype, **extra)
        except (OSError, ValueError, RuntimeError, SafetensorError) as error:
            # Truncated or crafted weights: one line naming the folder, not a traceback.
            raise UserError(f"cannot load the weights of {name}: {str(error).splitlines()[0][:200] if str(error) else type(error).__name__}; "
                            "the folder's weight files are damaged or not this model's: save or download it again") from None
    model.to(resolve_device(device))
    if tokenizer.pad_token is None:
        # Decoder-only checkpoints often ship without a pad token; any token works under the attention mask.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return LoadedModel(model, tokenizer, is_encoder_decoder, name)


@torch.inference_mode()
def greedy_generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    is_encoder_decoder: bool,
    prompts: list[str],
    max_input_length: int,
    max_new_tokens: int,
    decoder_prompt: str = "",
) -> list[str]:
    """Greedy answers to ready-made prompts; a decoder's answer is the first non-empty line it writes.

    ``decoder_prompt``: a seq2seq model's output starts with it (teacher-forced, not part of the answer).
    """
    from tokendistill.tasks.base import first_line

    device = next(model.parameters()).device
    side = tokenizer.padding_side
    if not is_encoder_decoder:
        tokenizer.padding_side = "left"  # a decoder continues from the last position of every row
    try:
        encoded = tokenizer(
            prompts, padding=True, truncation=True, max_length=max_input_length, return_tensors="pt"
        ).to(device)
    finally:
        tokenizer.padding_side = side
    forced = {}
    if is_encoder_decoder and decoder_prompt:
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        prompt = [start, *tokenizer(decoder_prompt, add_special_tokens=False)["input_ids"]]
        forced["decoder_input_ids"] = torch.tensor([prompt] * len(prompts), device=device)
    output = model.generate(
        **encoded, **forced, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    if is_encoder_decoder:
        if forced:
            output = output[:, forced["decoder_input_ids"].shape[1] :]
        return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]
    decoded = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return [first_line(text) for text in decoded]


def save_architecture(config: Any, tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> Path:
    """A folder holding only a config and a tokenizer: load it with ``init="random"`` to train from scratch."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_t5_config(vocab_size: int, d_model: int = 64, layers: int = 2, heads: int = 4, d_ff: int | None = None) -> Any:
    """A small FLAN-T5-style configuration (gated GELU) with the pad/EOS ids of ``vocab.build_word_tokenizer``."""
    from transformers import T5Config

    return T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_model // heads,
        d_ff=d_ff or 2 * d_model,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=heads,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        tie_word_embeddings=True,
    )
