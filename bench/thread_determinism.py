"""Are outputs bit-identical across CPU thread counts? Runs the same tiny extract + train with 1 and with 2
threads (separate processes, OMP_NUM_THREADS) and compares the bytes. Written to
bench/results/thread_determinism.json; docs/reliability.md quotes it.

    python bench/thread_determinism.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from provenance import provenance  # bench/: where a figure was measured
from tokendistill.models import tiny_t5_config
from tokendistill.tasks.synthetic import DISTRACTORS, KEYWORDS
from tokendistill.vocab import build_word_tokenizer

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        from transformers import AutoModelForSeq2SeqLM

        text = " ".join([*DISTRACTORS, *(w for words in KEYWORDS.values() for w in words), *KEYWORDS,
                         "predict:", "explain:"])
        tokenizer = build_word_tokenizer([text])
        torch.manual_seed(0)
        model = AutoModelForSeq2SeqLM.from_config(tiny_t5_config(len(tokenizer), d_model=128, heads=4))
        model.save_pretrained(root / "model")
        tokenizer.save_pretrained(root / "model")
        digests: dict[str, dict[str, str]] = {}
        for threads in ("1", "2"):
            out = root / threads
            environment = {**os.environ, "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}
            common = ["--task", "keywords", "--device", "cpu", "--limit", "64"]
            for arguments in (
                ["extract", *common, "--teacher", str(root / "model"), "--output", str(out / "r"), "--top-k", "3",
                 "--max-new-tokens", "3"],
                ["train", *common, "--student", str(root / "model"), "--output", str(out / "s"), "--mode", "multitask",
                 "--rationales", str(out / "r"), "--steps", "20", "--batch-size", "16"],
            ):
                subprocess.run([sys.executable, "-m", "tokendistill.cli", *arguments], env=environment, check=True,
                               capture_output=True)
            digests[threads] = {name: hashlib.sha256((out / name).read_bytes()).hexdigest()[:16]
                                for name in ("r/records.jsonl", "s/model.safetensors", "s/train_log.jsonl")}
    result = {"model": "t5, d_model 128, 2+2 layers (random)", "files": {name: digests["1"][name] == digests["2"][name]
                                                                      for name in digests["1"]},
              "digests": digests, "torch": torch.__version__}
    RESULTS.mkdir(exist_ok=True)
    measured = provenance()
    (RESULTS / "thread_determinism.json").write_text(json.dumps({**result, "measured": measured}, indent=2))
    print(json.dumps(result["files"], indent=2))


if __name__ == "__main__":
    main()
