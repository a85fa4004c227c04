"""Build a smaller student from a decoder teacher: keep an evenly spaced subset of its layers.

The offline models here are decoders of 135M parameters and up, and the only seq2seq student that can be
built from them (MiniLM twice, tools/minilm_seq2seq.py) starts with untrained cross-attention. Keeping every
k-th layer of a pretrained decoder (as DistilBERT initialised its student from every other layer of BERT)
gives a smaller student whose every weight is pretrained and whose vocabulary is the teacher's, which
`multitask_kd` needs.

    python tools/slice_decoder.py ~/.cache/offline-models/smollm2-135m-instruct ~/.cache/offline-models/smollm2-10l 10
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def slice_decoder(source: str, output: str, layers: int) -> Path:
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    blocks = model.model.layers
    if not 1 <= layers <= len(blocks):
        raise SystemExit(f"{source} has {len(blocks)} layers; keep between 1 and {len(blocks)}")
    # Evenly spaced, always keeping the first and the last layer (the ones nearest embeddings and output).
    keep = sorted({round(i * (len(blocks) - 1) / max(layers - 1, 1)) for i in range(layers)})
    model.model.layers = torch.nn.ModuleList(blocks[i] for i in keep)
    model.config.num_hidden_layers = len(keep)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in keep]
    folder = Path(output).expanduser()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(slice_decoder(sys.argv[1], sys.argv[2], int(sys.argv[3])))
