"""--task-marker decoder: the encoder reads each input once; `predict:` / `explain:` start the output instead."""

import json
from pathlib import Path

import pytest
import torch

from tokendistill.cli import main
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.data import encode_rows, forward_inputs, row_losses
from tokendistill.training.modes import MODES, marker_to_decoder

EXAMPLES = [Example("e", (Segment("input", "the tiger went near the river"),), "animal"),
            Example("f", (Segment("input", "a small yellow truck"),), "vehicle")]
RATIONALES = [{"rationale": ["tiger", "river"]}, {"rationale": ["small", "yellow", "truck"]}]


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_one_encoder_pass_gives_each_row_its_own_forward_pass_loss(
    family: str, t5_dir: Path, architecture_dirs: dict[str, Path]
) -> None:
    loaded = load_model(str(t5_dir if family == "t5" else architecture_dirs["bart"]), device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    rows = [marker_to_decoder(row) for ex, r in zip(EXAMPLES, RATIONALES) for row in MODES.get("multitask").rows(ex, r)]
    assert [row.decoder_prompt for row in rows] == ["predict:", "explain:"] * 2
    assert rows[0].source == rows[1].source == "the tiger went near the river"
    encoded = encode_rows(tokenizer, rows, True, 64, 16)
    assert encoded.model_inputs["input_ids"].shape[0] == 2  # one encoder row per example, not per row
    with torch.no_grad():
        inputs = forward_inputs(model, encoded, torch.device("cpu"), True)
        got = row_losses(model, model.get_output_embeddings(), inputs, encoded.labels, True)
        for number, row in enumerate(rows):
            # The row alone: the source without a marker, the decoder forced through the marker, the loss on
            # the target tokens only.
            source = tokenizer([row.source], return_tensors="pt")
            prompt = tokenizer(row.decoder_prompt, add_special_tokens=False)["input_ids"]
            target = tokenizer(row.target)["input_ids"]
            full = torch.tensor([prompt + target])
            labels = full.clone()
            labels[0, : len(prompt)] = -100
            mean = model(**source, decoder_input_ids=model.prepare_decoder_input_ids_from_labels(labels=full),
                         labels=labels).loss
            assert int(got.row_tokens[number]) == len(target)
            torch.testing.assert_close(got.row_loss[number], mean * len(target), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_student_trained_with_the_marker_in_the_decoder_answers_after_it(tmp_path: Path, t5_dir: Path) -> None:
    common = ["--task", "keywords", "--device", "cpu", "--limit", "16"]
    rationales = tmp_path / "rationales"
    assert main(["extract", *common, "--teacher", str(t5_dir), "--output", str(rationales), "--top-k", "2",
                 "--batch-size", "8", "--max-new-tokens", "2"]) == 0
    student = tmp_path / "student"
    assert main(["train", *common, "--student", str(t5_dir), "--output", str(student), "--mode", "multitask",
                 "--rationales", str(rationales), "--task-marker", "decoder", "--steps", "40", "--batch-size", "8",
                 "--learning-rate", "3e-3"]) == 0
    info = json.loads((student / "tokendistill.json").read_text())
    assert info["task_marker"] == "decoder"
    evaluation = tmp_path / "eval"
    assert main(["evaluate", "--task", "keywords", "--device", "cpu", "--limit", "16", "--split", "train",
                 "--model", str(student), "--output", str(evaluation)]) == 0
    metrics = json.loads((evaluation / "metrics.json").read_text())
    # It has learnt its 16 training examples, answering after the forced `predict:` (not echoing it).
    assert metrics["accuracy"] >= 0.75
    predictions = [json.loads(line)["prediction"] for line in (evaluation / "predictions.jsonl").open()]
    assert not any(prediction.startswith(("predict", "explain")) for prediction in predictions)


@pytest.mark.parametrize("case", ["causal student", "standard mode"])
def test_the_marker_in_the_decoder_is_refused_where_it_means_nothing(
    case: str, tmp_path: Path, t5_dir: Path, llama_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    student, mode = (llama_dir, "dss") if case == "causal student" else (t5_dir, "standard")
    code = main(["train", "--task", "keywords", "--device", "cpu", "--limit", "4", "--student", str(student),
                 "--output", str(tmp_path / "s"), "--mode", mode, "--llm-rationales", str(tmp_path / "llm"), "--steps", "1",
                 "--task-marker", "decoder"])
    assert code == 2
    assert "--task-marker" in capsys.readouterr().err
