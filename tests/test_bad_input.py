"""Every bad input of the reliability issue: one line naming the problem and the fix, exit code 2."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

from tokendistill import models
from tokendistill.cli import main


def fails_with(capsys: pytest.CaptureFixture[str], arguments: list[str], *fragments: str) -> str:
    assert main(arguments) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "an error message was expected"
    message = lines[-1]
    assert message.startswith("tokendistill: error: ")
    assert "Traceback" not in "\n".join(lines)
    for fragment in fragments:
        assert fragment in message, message
    return message


def extract(data: Path | str, *extra: str, task: str = "text", teacher: str = "unused-teacher") -> list[str]:
    return ["extract", "--task", task, "--teacher", teacher, "--output", str(Path(str(data)).parent / "out"),
            "--data", str(data), "--device", "cpu", *extra]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails_with(capsys, extract(tmp_path / "nope.jsonl"), "does not exist", "--data")


def test_unreadable_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    fails_with(capsys, extract(path), "cannot read", ".jsonl")


def test_malformed_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"input": "a", "label": "b"}\n{"input": broken\n')
    fails_with(capsys, extract(path), "cannot parse", str(path))


def test_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"text": "a b c", "label": "x"}])
    fails_with(capsys, extract(path), "needs a column 'input'", "text")


def test_empty_input_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"input": "   ", "label": "x"}])
    fails_with(capsys, extract(path), "empty")


def test_label_outside_the_task_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"premise": "a", "hypothesis": "b", "label": "maybe"}])
    fails_with(capsys, extract(path, task="esnli"), "'maybe'", "entailment, neutral, contradiction")


def test_non_utf8_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"input": "caf\xe9 au lait", "label": "x"}\n')
    fails_with(capsys, extract(path), "not valid UTF-8", "re-encode")


def test_hub_id_unreachable_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # What HF_HUB_OFFLINE=1 does, set after import; without it the hub client retries for ~20 s first.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    path = write_jsonl(tmp_path / "data.jsonl", [{"input": "a b c d", "label": "x"}])
    fails_with(capsys, extract(path, "--top-k", "1", teacher="nobody/no-such-model"), "nobody/no-such-model",
               "local path")


def test_gguf_without_the_gguf_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "gguf" else real_find_spec(name, *rest))
    path = write_jsonl(tmp_path / "data.jsonl", [{"input": "a b c d", "label": "x"}])
    fails_with(capsys, extract(path, "--top-k", "1", teacher=str(tmp_path / "model.Q8_0.gguf")), "pip install gguf")


def test_cuda_without_a_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, t5_dir: Path
) -> None:
    monkeypatch.setattr(models.torch.cuda, "is_available", lambda: False)
    arguments = ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(tmp_path / "o"),
                 "--limit", "2", "--top-k", "1", "--device", "cuda"]
    fails_with(capsys, arguments, "--device cuda", "--device cpu")


def test_k_larger_than_every_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"input": "one two three", "label": "x"}])
    fails_with(capsys, extract(path, "--top-k", "50"), "--top-k 50", "3 candidate words", "fraction")


def test_output_folder_of_a_different_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path) -> None:
    arguments = ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(tmp_path / "o"),
                 "--limit", "2", "--top-k", "2", "--max-new-tokens", "2", "--device", "cpu"]
    assert main(arguments) == 0
    fails_with(capsys, [*arguments, "--method", "grad_x_input"], "different configuration", "method", "--overwrite")
    assert main([*arguments, "--method", "grad_x_input", "--overwrite"]) == 0


def test_folder_that_is_no_rationale_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    arguments = ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(tmp_path / "o"),
                 "--limit", "2", "--top-k", "2", "--device", "cpu"]
    fails_with(capsys, arguments, "not a rationale folder", "--overwrite")
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine"


def test_long_inputs_are_truncated_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, t5_dir: Path
) -> None:
    output = tmp_path / "o"
    arguments = ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(output), "--limit", "6",
                 "--top-k", "2", "--max-new-tokens", "2", "--max-input-length", "6", "--device", "cpu"]
    with caplog.at_level(logging.WARNING):
        assert main(arguments) == 0
    summary = json.loads((output / "manifest.json").read_text())["summary"]
    assert summary["truncated_inputs"] == 6
    assert "6 of 6 inputs were longer than 6 teacher tokens" in caplog.text


def test_unknown_method_lists_the_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"input": "a b c", "label": "x"}])
    fails_with(capsys, extract(path, "--method", "salency"), "salency", "saliency", "integrated_gradients")


def test_training_without_rationales_for_multitask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path
) -> None:
    arguments = ["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(tmp_path / "s"),
                 "--mode", "multitask", "--limit", "4", "--steps", "1"]
    fails_with(capsys, arguments, "--rationales")


def test_teacher_changed_in_place_is_not_resumed_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path
) -> None:
    teacher = tmp_path / "teacher"
    shutil.copytree(t5_dir, teacher)
    arguments = ["extract", "--task", "keywords", "--teacher", str(teacher), "--output", str(tmp_path / "o"),
                 "--limit", "2", "--top-k", "2", "--max-new-tokens", "2", "--device", "cpu"]
    assert main(arguments) == 0
    model = AutoModelForSeq2SeqLM.from_pretrained(teacher)
    torch.nn.init.normal_(model.shared.weight)
    model.save_pretrained(teacher)  # retrained into the same folder
    fails_with(capsys, arguments, "teacher_fingerprint", "--overwrite")


def test_student_on_changed_rationales_is_not_reused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path
) -> None:
    rationales = tmp_path / "r"
    extract_arguments = ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(rationales),
                         "--limit", "4", "--top-k", "2", "--max-new-tokens", "2", "--device", "cpu"]
    assert main(extract_arguments) == 0
    train_arguments = ["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(tmp_path / "s"),
                       "--mode", "multitask", "--rationales", str(rationales), "--limit", "4", "--steps", "1",
                       "--device", "cpu"]
    assert main(train_arguments) == 0
    assert main([*extract_arguments, "--top-k", "3", "--overwrite"]) == 0
    fails_with(capsys, train_arguments, "rationales_fingerprint")
