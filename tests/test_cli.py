"""The CLI end to end on tiny random models loaded by path: extract -> train -> evaluate."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokendistill.cli import main


def run(*arguments: str) -> int:
    return main(list(arguments))


@pytest.mark.parametrize("teacher_fixture", ["t5_dir", "llama_dir"])
def test_extract_train_evaluate(tmp_path: Path, teacher_fixture: str, request: pytest.FixtureRequest) -> None:
    teacher = str(request.getfixturevalue(teacher_fixture))
    student = str(request.getfixturevalue("t5_dir"))
    rationales = tmp_path / "rationales"
    common = ["--task", "keywords", "--device", "cpu"]
    assert run("extract", *common, "--teacher", teacher, "--output", str(rationales), "--limit", "24",
               "--top-k", "3", "--batch-size", "8", "--max-new-tokens", "4") == 0
    records = [json.loads(line) for line in (rationales / "records.jsonl").read_text().splitlines()]
    assert len(records) == 24
    for record in records:
        assert 1 <= len(record["rationale"]) <= 3
        assert [record["words"][i] for i in record["rationale_positions"]] == record["rationale"]
        assert record["rationale_positions"] == sorted(record["rationale_positions"])
    manifest = json.loads((rationales / "manifest.json").read_text())
    assert manifest["complete"] and manifest["summary"]["examples"] == 24
    assert "torch" in manifest["versions"] and (rationales / "config.yaml").exists()

    # The same command again finds everything done and rewrites nothing.
    before = (rationales / "records.jsonl").read_bytes()
    assert run("extract", *common, "--teacher", teacher, "--output", str(rationales), "--limit", "24",
               "--top-k", "3", "--batch-size", "8", "--max-new-tokens", "4") == 0
    assert (rationales / "records.jsonl").read_bytes() == before
    # A different configuration is refused rather than mixed in.
    assert run("extract", *common, "--teacher", teacher, "--output", str(rationales), "--limit", "24",
               "--top-k", "5") == 2

    for mode in ("standard", "multitask"):
        out = tmp_path / mode
        assert run("train", *common, "--student", student, "--output", str(out), "--mode", mode,
                   "--rationales", str(rationales), "--limit", "24", "--steps", "3", "--batch-size", "8") == 0
        assert (out / "model.safetensors").exists() and (out / "config.yaml").exists()
        info = json.loads((out / "tokendistill.json").read_text())
        assert info["predict_prefix"] == ("predict: " if mode == "multitask" else "")
        assert run("evaluate", *common, "--model", str(out), "--output", str(out / "eval"), "--limit", "16",
                   "--max-new-tokens", "4") == 0
        metrics = json.loads((out / "eval" / "metrics.json").read_text())
        assert metrics["examples"] == 16 and 0 <= metrics["accuracy"] <= 1
        assert len((out / "eval" / "predictions.jsonl").read_text().splitlines()) == 16


def test_yaml_config_with_cli_override(tmp_path: Path, t5_dir: Path) -> None:
    config = tmp_path / "extract.yaml"
    config.write_text(f"task: keywords\nteacher: {t5_dir}\noutput: {tmp_path / 'r'}\nlimit: 4\ntop_k: 2\ndevice: cpu\n")
    assert run("extract", "--config", str(config), "--top-k", "1", "--max-new-tokens", "2") == 0
    resolved = (tmp_path / "r" / "config.yaml").read_text()
    assert "top_k: 1.0" in resolved and "limit: 4" in resolved


def test_user_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tokendistill.cli", "extract", "--task", "cqa", "--teacher", "nobody/none",
         "--output", str(tmp_path / "o"), "--data", str(tmp_path / "missing.jsonl")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("tokendistill: error: data path")
    assert "Traceback" not in result.stderr


def test_unknown_option_in_yaml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("task: keywords\nteacher: x\noutput: y\ntop_kk: 3\n")
    assert run("extract", "--config", str(config)) == 2


def test_version_and_python_dash_m(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    import tokendistill

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tokendistill {tokendistill.__version__}"
    result = subprocess.run([sys.executable, "-m", "tokendistill", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"tokendistill {tokendistill.__version__}"


@pytest.mark.parametrize("command", [["evaluate", "--task", "keywords", "--model", "m", "--output", "o"],
                                     ["predict", "--model", "m", "hello"],
                                     ["extract", "--task", "keywords", "--teacher", "t", "--output", "o"]])
def test_a_device_it_does_not_run_on_is_refused_at_once(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--device", "mps"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "tokendistill: error: --device mps: must be auto, cpu, cuda or cuda:N (the devices tokendistill runs on)"


def test_help_lists_the_registries_and_groups_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    from tokendistill.attribution.methods import METHODS
    from tokendistill.training.modes import MODES

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in MODES.names()) and "standard or multitask" not in text
    for group in ("data options:", "models options:", "method options:", "training options:", "output options:"):
        assert group in text
    assert "--input-column INPUT_COLUMN text task: the input column (default: input)" in text
    assert main(["extract", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in METHODS.names())


def test_a_boolean_takes_no_flag(tmp_path: Path) -> None:
    from tokendistill.arguments import from_arguments
    from tokendistill.cli import build_parser
    from tokendistill.config import TrainConfig

    def parsed(*flags: str) -> TrainConfig:
        arguments = build_parser().parse_args(["train", "--task", "keywords", "--student", "s", "--output", "o",
                                               *flags])
        del arguments.handler, arguments.config_class
        return from_arguments(TrainConfig, arguments)

    assert parsed("--no-batch-by-length").batch_by_length is False and parsed().batch_by_length is True
    assert parsed("--overwrite").overwrite is True and parsed("--overwrite", "--no-overwrite").overwrite is False


def test_a_flag_never_swallows_the_positional_after_it() -> None:
    from tokendistill.cli import build_parser

    arguments = build_parser().parse_args(["explain", "--teacher", "t", "--chat-template", "some text"])
    assert arguments.chat_template is True and arguments.input == "some text"


def test_usage_writes_the_required_options_as_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    assert capsys.readouterr().out.startswith(
        "usage: tokendistill train --task TASK --student STUDENT --output OUTPUT [options]\n")
    assert main(["predict", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: tokendistill predict --model MODEL [options] INPUTS ...\n")


def test_a_command_leaves_its_process_group_before_the_process_ends(tmp_path: Path) -> None:
    """A distributed run's gloo threads alive at interpreter exit can abort a finished process (pytorch#179291):
    main leaves the process group once its command is done."""
    import torch.distributed as distributed

    distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        assert distributed.is_initialized()
        (tmp_path / "grid").mkdir()
        assert main(["results", str(tmp_path / "grid")]) == 0
        assert not distributed.is_initialized()
    finally:
        if distributed.is_initialized():
            distributed.destroy_process_group()
