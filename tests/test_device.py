"""The CUDA code paths (bf16 autocast in training and attribution, tensors placed on the GPU), end to end.

CI has no GPU, so these are skipped there; run them on a GPU machine before trusting a grid to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tokendistill.cli import main

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_grid_of_every_mode_on_a_causal_student_runs_on_cuda(tmp_path: Path, llama_dir: Path) -> None:
    experiment = {
        "output": str(tmp_path / "grid"),
        "device": "cuda",
        "tasks": [{"name": "keywords", "train_sizes": [24], "test_limit": 12}],
        "teacher": {"model": str(llama_dir), "finetune": {"steps": 2, "batch_size": 4},
                    "extract": {"batch_size": 8, "max_new_tokens": 3}},
        "student": {"model": str(llama_dir), "train": {"steps": 3, "batch_size": 4},
                    "evaluate": {"max_new_tokens": 3, "answer": "choice_sum"}},
        "modes": ["standard", "multitask", "multitask_kd", "label_then_tokens"],
        "top_k": [2],
        "seeds": [0],
        "competence": {"on_failure": "warn"},
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["run", str(path)]) == 0
    metrics = [json.loads(p.read_text()) for p in (tmp_path / "grid").rglob("metrics.json")]
    assert sorted(m["mode"] for m in metrics) == ["label_then_tokens", "multitask", "multitask_kd", "standard"]
    assert all(0 <= m["accuracy"] <= 1 for m in metrics)


def test_saliency_on_cuda_ranks_words_as_on_cpu(tmp_path: Path, llama_dir: Path) -> None:
    scores = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        assert main(["extract", "--task", "keywords", "--teacher", str(llama_dir), "--output", str(out),
                     "--limit", "16", "--top-k", "3", "--device", device, "--max-new-tokens", "3"]) == 0
        records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
        scores[device] = [np.array(r["word_scores"], dtype=float) for r in records]
    correlations = [np.corrcoef(a, b)[0, 1] for a, b in zip(scores["cpu"], scores["cuda"]) if len(a) > 2]
    print(f"cpu vs cuda (bf16) word-score correlation: median {np.median(correlations):.3f}")
    assert np.median(correlations) > 0.9
