"""Build a real (partly pretrained) seq2seq student offline: MiniLM as encoder and as decoder.

The hub is out of reach here and PyPI carries no pretrained T5/BART, but it carries MiniLM (see
shared/models.md). ``EncoderDecoderModel`` joins two copies into a 2 x 22.7M seq2seq model whose
cross-attention starts untrained; saved with its tokenizer it loads like any hub seq2seq model.

    python tools/minilm_seq2seq.py ~/.cache/offline-models/all-minilm-l6-v2 ~/.cache/offline-models/minilm-seq2seq
"""

from __future__ import annotations

import sys
from pathlib import Path

from transformers import AutoTokenizer, EncoderDecoderModel


def build(encoder_folder: str, output: str) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(encoder_folder)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(encoder_folder, encoder_folder)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    model.generation_config.decoder_start_token_id = tokenizer.cls_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.sep_token_id
    folder = Path(output).expanduser()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(build(sys.argv[1], sys.argv[2]))
