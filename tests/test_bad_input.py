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
    fails_with(capsys, arguments, "not a rationale folder", "a new or empty folder")
    # A folder that is not ours is never cleared: --overwrite is refused the same way (and no refusal suggests it).
    message = fails_with(capsys, [*arguments, "--overwrite"], "not a rationale folder", "a new or empty folder")
    assert "--overwrite" not in message
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


# ----- every option is checked where it is parsed, before any model loads --------------------------------
def _numeric_fields(config_class: type) -> list[tuple[str, type, dict]]:
    import dataclasses
    import typing

    from tokendistill.options import unwrap_optional as _unwrap_optional

    hints = typing.get_type_hints(config_class)
    fields = []
    for item in dataclasses.fields(config_class):
        hint, _ = _unwrap_optional(hints[item.name])
        if hint in (int, float):
            fields.append((item.name, hint, dict(item.metadata)))
    return fields


def _commands() -> list[tuple[str, type, list[str]]]:
    """Each command with its config class and the flags that choose it: `train` once per class its modes take
    (TrainConfig, then KDConfig with --mode kd, ...)."""
    from tokendistill.cli import _commands as commands
    from tokendistill.cli import _config_class
    from tokendistill.options import ConfigVariants

    pairs = []
    for name, _, where, _ in commands():
        spec = _config_class(where)
        if isinstance(spec, ConfigVariants):
            pairs += [(name, spec.base, []), *((name, cls, ["--mode", values[0]]) for cls, values in spec.sections().items())]
        else:
            pairs.append((name, spec, []))
    return pairs


def test_every_numeric_option_declares_its_range() -> None:
    for command, config_class, _ in _commands():
        for name, _, metadata in _numeric_fields(config_class):
            assert {"minimum", "above", "maximum", "check"} & set(metadata), f"{command} --{name} has no range"


def _out_of_range(hint: type, metadata: dict) -> list[str]:
    values = ["nan", "inf"] if hint is float else ["2.5"]
    if "minimum" in metadata:
        values.append(str(metadata["minimum"] - 1))
    if "above" in metadata:
        values.append(str(metadata["above"]))
    if "maximum" in metadata:
        values.append(str(metadata["maximum"] + 1))
    if "check" in metadata:
        values += ["2.5", "0", "-1"]
    return values


def _required_arguments(config_class: type, tmp_path: Path) -> list[str]:
    import dataclasses

    arguments = []
    for item in dataclasses.fields(config_class):
        if item.default is dataclasses.MISSING:
            value = "keywords" if item.name == "task" else str(tmp_path / item.name)
            arguments += [value] if item.metadata.get("positional") else ["--" + item.name.replace("_", "-"), value]
    return arguments


def test_every_option_out_of_its_range_is_one_line_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models.AutoConfig, "from_pretrained", no_loading)
    checked = 0
    for command, config_class, choice in _commands():
        required = [*_required_arguments(config_class, tmp_path), *choice]
        for name, hint, metadata in _numeric_fields(config_class):
            for value in _out_of_range(hint, metadata):
                flag = "--" + name.replace("_", "-")
                message = fails_with(capsys, [command, *required, f"{flag}={value}"], flag)
                assert value in message or "should be" in message or "invalid" in message, message
                checked += 1
    assert checked > 60


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--top-k", "2.5", "whole number"), ("--top-k", "nan", "finite"), ("--batch-size", "0", ">= 1"),
    ("--limit", "-5", ">= 1"), ("--max-new-tokens", "0", ">= 1"), ("--ig-steps", "0", ">= 1"),
    ("--max-input-length", "0", ">= 1"), ("--batch-size", "abc", "invalid int"),
])
def test_extract_options_named_in_the_issue(
    option: str, value: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fails_with(capsys, extract(tmp_path / "data.jsonl", f"{option}={value}"), option, fragment)


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--learning-rate", "nan", "finite"), ("--lora-rank", "-4", ">= 0"), ("--checkpoint-every", "-1", ">= 0"),
    ("--top-k", "2.5", "whole number"), ("--alpha", "1.5", "<= 1"), ("--steps", "0", ">= 1"),
])
def test_train_options_named_in_the_issue(
    option: str, value: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fails_with(capsys, ["train", "--task", "keywords", "--student", "s", "--output", str(tmp_path / "o"),
                        f"{option}={value}"], option, fragment)


def test_a_folder_as_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails_with(capsys, ["extract", "--config", str(tmp_path)], "is a folder")


def test_a_boolean_where_a_number_belongs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "extract.yaml"
    config.write_text("task: keywords\nteacher: t\noutput: o\nlimit: true\n")
    fails_with(capsys, ["extract", "--config", str(config)], "limit", "int")


@pytest.mark.parametrize(("text", "fragment"), [
    ("train_sizes: 8", "train_sizes should be a list"), ("train_sizes: [0]", "positive whole"),
])
def test_grid_task_fields_of_the_wrong_shape(
    text: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(f"output: {tmp_path / 'g'}\ntasks:\n  - name: keywords\n    {text}\nteacher: {{model: t}}\n"
                    "student: {model: s}\nmodes: [standard]\n")
    fails_with(capsys, ["run", str(path)], fragment)


def test_grid_teacher_as_a_path_string(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(f"output: {tmp_path / 'g'}\ntasks: [keywords]\nteacher: /some/model\nstudent: {{model: s}}\n"
                    "modes: [standard]\n")
    fails_with(capsys, ["run", str(path)], "teacher should be a mapping")


def test_a_teacher_folder_without_model_type(tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path) -> None:
    teacher = tmp_path / "teacher"
    shutil.copytree(t5_dir, teacher)
    config = json.loads((teacher / "config.json").read_text())
    config.pop("model_type")
    (teacher / "config.json").write_text(json.dumps(config))
    fails_with(capsys, ["extract", "--task", "keywords", "--teacher", str(teacher), "--output", str(tmp_path / "o"),
                        "--limit", "2", "--top-k", "1", "--device", "cpu"], "cannot load a model", "model_type")


def test_an_existing_file_as_output(tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    fails_with(capsys, ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(taken),
                        "--limit", "2", "--top-k", "1", "--device", "cpu"], "is a file")
    assert taken.read_text() == "mine"


def test_only_correct_with_a_teacher_that_is_never_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], t5_dir: Path
) -> None:
    arguments = ["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(tmp_path / "o"),
                 "--limit", "8", "--top-k", "2", "--max-new-tokens", "2", "--device", "cpu", "--only-correct"]
    fails_with(capsys, arguments, "--only-correct kept no words", "right on none of the 8")
    fails_with(capsys, ["train", "--task", "keywords", "--student", str(t5_dir), "--output", str(tmp_path / "s"),
                        "--mode", "multitask", "--rationales", str(tmp_path / "o"), "--limit", "8", "--steps", "1",
                        "--device", "cpu"], "no training example has rationale words")
