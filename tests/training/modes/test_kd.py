"""kd: standard fine-tuning plus the KL term, at multitask_kd's weights for the two terms it shares."""

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from tokendistill.cli import main
from tokendistill.models import load_model
from tokendistill.tasks import Example, Segment
from tokendistill.training.modes import MODES, KDConfig, RationaleSource
from tokendistill.training.step import step_loss

EXAMPLES = [Example(f"e{i}", (Segment("input", text),), label) for i, (text, label) in enumerate(
    [("the tiger went near the river", "animal"), ("a small yellow truck", "vehicle"), ("the red bus", "vehicle")])]


def test_kd_gives_label_rows_only_each_carrying_its_example() -> None:
    mode = MODES.get("kd")
    rows = mode.rows(EXAMPLES[0], {"rationale": ["tiger"]})
    assert [(row.source, row.target, str(row.group), row.example) for row in rows] == [
        ("the tiger went near the river", "animal", "label", EXAMPLES[0])]
    assert mode.rationale_source is RationaleSource.NONE and mode.needs_teacher and mode.predict_prefix == ""


def test_kd_without_a_teacher_is_refused_before_anything_loads(tmp_path: Path) -> None:
    code = main(["train", "--task", "keywords", "--device", "cpu", "--student", str(tmp_path / "no-such-model"),
                 "--output", str(tmp_path / "s"), "--mode", "kd", "--steps", "1"])
    assert code == 2


def _step(mode: str, folder: Path, **options: float) -> tuple[float, dict[str, float]]:
    loaded = load_model(str(folder), device="cpu")
    config = KDConfig(task="keywords", student=str(folder), output="unused", mode=mode, teacher=str(folder),
                      **options)
    signal = MODES.get(mode).signal(config, loaded.tokenizer, torch.device("cpu"))
    rows = [row for example in EXAMPLES for row in MODES.get(mode).rows(example, None)]
    return step_loss(config, loaded, loaded.model, Accelerator(cpu=True), signal, torch.device("cpu"), rows)


@pytest.mark.parametrize(("alpha", "kd_weight"), [(0.5, 1.0), (0.3, 2.0)])
def test_kd_loss_is_alpha_times_the_label_loss_plus_the_weighted_kl(
        alpha: float, kd_weight: float, llama_dir: Path) -> None:
    value, parts = _step("kd", llama_dir, alpha=alpha, kd_weight=kd_weight, kd_temperature=2.0)
    assert set(parts) == {"label_loss", "kd_loss"}
    # A student that is its own teacher has no KL to close; the term is still computed and logged.
    assert parts["kd_loss"] == pytest.approx(0.0, abs=1e-5)
    assert value == pytest.approx(alpha * parts["label_loss"] + kd_weight * parts["kd_loss"], rel=1e-6)


def test_kd_at_alpha_one_and_no_kl_weight_is_standard_fine_tuning(llama_dir: Path) -> None:
    kd_value, kd_parts = _step("kd", llama_dir, alpha=1.0, kd_weight=0.0)
    standard_value, standard_parts = _step("standard", llama_dir)
    assert kd_value == standard_value and kd_parts["label_loss"] == standard_parts["label_loss"]


@pytest.mark.slow
def test_kd_trains_and_logs_its_kl_term(tmp_path: Path, llama_dir: Path) -> None:
    student = tmp_path / "student"
    assert main(["train", "--task", "keywords", "--device", "cpu", "--limit", "8", "--student", str(llama_dir),
                 "--output", str(student), "--mode", "kd", "--teacher", str(llama_dir), "--kd-weight", "0.5",
                 "--steps", "3", "--batch-size", "4", "--base-model-id", "HuggingFaceTB/SmolLM2-135M"]) == 0
    log = [json.loads(line) for line in (student / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and all(entry["kd_loss"] >= 0 and "rationale_loss" not in entry for entry in log)
    # It starts as its teacher (no KL); the label loss then moves it away, and the KL term measures that.
    assert log[0]["kd_loss"] == pytest.approx(0.0, abs=1e-6) and log[-1]["kd_loss"] > 0
    assert json.loads((student / "tokendistill.json").read_text())["mode"] == "kd"
    # The card names the mode's own options as numbers, its teacher by folder name, and the hub id it began from.
    card = (student / "README.md").read_text()
    assert f"| options of its mode | kd_temperature 1.0, kd_weight 0.5, teacher {llama_dir.name} |" in card
    assert "base_model: HuggingFaceTB/SmolLM2-135M" in card and str(llama_dir) not in card.split("```")[0]
