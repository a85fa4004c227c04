"""tools/slice_decoder.py: a student made of every k-th layer of a decoder teacher."""

import importlib.util
import sys
from pathlib import Path

import torch

from tokendistill.models import load_model

TOOL = Path(__file__).resolve().parents[2] / "tools" / "slice_decoder.py"


def _tool():
    spec = importlib.util.spec_from_file_location("slice_decoder", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["slice_decoder"] = module
    spec.loader.exec_module(module)
    return module


def test_slice_keeps_first_and_last_layers_and_all_layers_reproduce_the_teacher(
    tmp_path: Path, gemma3_four_layers: Path
) -> None:
    tool = _tool()
    teacher = load_model(str(gemma3_four_layers), device="cpu")
    whole = load_model(str(tool.slice_decoder(str(gemma3_four_layers), str(tmp_path / "all"), 4)), device="cpu")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(whole.model(ids).logits, teacher.model(ids).logits)
    student = load_model(str(tool.slice_decoder(str(gemma3_four_layers), str(tmp_path / "two"), 2)), device="cpu")
    layers = student.model.model.layers
    assert len(layers) == 2 and student.model.config.num_hidden_layers == 2
    teacher_layers = teacher.model.model.layers
    for kept, original in zip(layers, (teacher_layers[0], teacher_layers[3])):
        torch.testing.assert_close(kept.mlp.up_proj.weight, original.mlp.up_proj.weight)
    # Gemma3 alternates sliding-window and full attention per layer: the kept layers keep their kind.
    types = teacher.model.config.layer_types
    assert student.model.config.layer_types == [types[0], types[3]]
    assert student.tokenizer.get_vocab() == teacher.tokenizer.get_vocab()  # multitask_kd needs the same vocabulary
