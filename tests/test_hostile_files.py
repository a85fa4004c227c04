"""The hostile file system: a link planted where a command writes, --overwrite with a model that does not load, a
folder that is not ours, a model folder that ships code. Each ends in one line, exit 2, and destroys nothing."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tokendistill.cli import main

COMMON = ["--task", "keywords", "--limit", "4", "--device", "cpu"]
CANARY = b"a user's file, never to be changed\n"


def one_line(capsys: pytest.CaptureFixture[str], arguments: list[str]) -> str:
    assert main(arguments) == 2, arguments
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("tokendistill: error: ") and "Traceback" not in "\n".join(lines)
    return lines[-1]


def commands(llama_dir: Path, tmp_path: Path, output: Path) -> dict[str, list[str]]:
    return {
        "extract": ["extract", *COMMON, "--teacher", str(llama_dir), "--output", str(output), "--top-k", "2",
                    "--target", "gold"],
        "train": ["train", *COMMON, "--student", str(llama_dir), "--output", str(output), "--steps", "2",
                  "--batch-size", "2", "--checkpoint-every", "1"],
        "evaluate": ["evaluate", *COMMON, "--model", str(llama_dir), "--output", str(output), "--max-new-tokens", "2"],
        "teacher-eval": ["teacher-eval", *COMMON, "--teacher", str(llama_dir), "--output", str(output),
                         "--max-new-tokens", "2"],
    }


# Every path each command writes in its folder.
WRITES = {
    "extract": [".tokendistill.lock", "records.jsonl", "manifest.json", "config.yaml"],
    "train": [".tokendistill.lock", "config.yaml", "model.safetensors", "config.json", "tokenizer.json",
              "tokendistill.json", "train_log.jsonl", "train_ids.txt", "README.md", "checkpoint.pt", "checkpoint.json"],
    "evaluate": [".tokendistill.lock", "predictions.jsonl", "predictions.partial.jsonl", "metrics.json", "config.yaml"],
    "teacher-eval": [".tokendistill.lock", "teacher_eval.json", "teacher_predictions.jsonl", "config.yaml"],
}


@pytest.mark.parametrize(("command", "name"), [(c, n) for c, names in WRITES.items() for n in names])
def test_a_link_planted_where_a_command_writes_leaves_its_target_unchanged(
        command: str, name: str, tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canary = tmp_path / "canary"
    canary.write_bytes(CANARY)
    output = tmp_path / "out"
    output.mkdir()
    (output / name).symlink_to(canary)
    message = one_line(capsys, commands(llama_dir, tmp_path, output)[command])
    assert "link" in message
    assert canary.read_bytes() == CANARY


@pytest.mark.parametrize("command", list(WRITES))
def test_a_pipe_or_a_link_loop_where_a_folder_or_file_is_expected_is_one_line(
        command: str, tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    one_line(capsys, commands(llama_dir, tmp_path, loop)[command])
    output = tmp_path / "out"
    output.mkdir()
    os.mkfifo(output / "config.yaml")
    one_line(capsys, commands(llama_dir, tmp_path, output)[command])


def test_the_report_never_writes_over_its_inputs_or_through_a_link(
        tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r"
    assert main(commands(llama_dir, tmp_path, records)["extract"]) == 0
    before = (records / "records.jsonl").read_bytes()
    assert "not a tokendistill report" in one_line(capsys, ["report", str(records), "--output",
                                                             str(records / "records.jsonl")])
    assert (records / "records.jsonl").read_bytes() == before
    canary = tmp_path / "canary"
    canary.write_bytes(CANARY)
    (records / "report.html").symlink_to(canary)
    assert "link" in one_line(capsys, ["report", str(records)])
    assert canary.read_bytes() == CANARY
    (records / "report.html").unlink()
    assert main(["report", str(records)]) == 0
    assert main(["report", str(records)]) == 0  # its own report is replaced


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory: pytest.TempPathFactory, llama_dir: Path) -> Path:
    """The tiny model with its weights cut in half (a download that stopped)."""
    folder = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(llama_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return folder


@pytest.mark.parametrize("model", ["missing", "broken"])
def test_overwrite_with_a_model_that_does_not_load_leaves_the_finished_output_as_it_was(
        model: str, tmp_path: Path, llama_dir: Path, broken_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = str(tmp_path / "no-such-model") if model == "missing" else str(broken_model)
    rationales, student, kd_student, evaluation = (tmp_path / name for name in ("r", "s", "kd", "e"))
    finished = {
        rationales: commands(llama_dir, tmp_path, rationales)["extract"],
        student: commands(llama_dir, tmp_path, student)["train"],
        kd_student: [*commands(llama_dir, tmp_path, kd_student)["train"], "--mode", "kd", "--teacher", str(llama_dir)],
        evaluation: commands(llama_dir, tmp_path, evaluation)["evaluate"],
    }
    for arguments in finished.values():
        assert main(arguments) == 0
    before = {folder: snapshot(folder) for folder in finished}
    retries = [
        ["extract", *COMMON, "--teacher", bad, "--output", str(rationales), "--top-k", "2", "--target", "gold"],
        ["train", *COMMON, "--student", bad, "--output", str(student), "--steps", "2", "--batch-size", "2"],
        # A second model (the KD teacher) that does not load, the student itself fine.
        [*finished[kd_student], "--teacher", bad],
        ["evaluate", *COMMON, "--model", bad, "--output", str(evaluation), "--max-new-tokens", "2"],
    ]
    for arguments in retries:
        one_line(capsys, [*arguments, "--overwrite"])
    assert {folder: snapshot(folder) for folder in finished} == before


def test_a_model_folder_that_ships_code_is_refused_and_its_code_never_runs(
        tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    marker = tmp_path / "ran"
    (model / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    (model / "config.json").write_text(json.dumps(config))
    for command in WRITES:
        message = one_line(capsys, commands(model, tmp_path, tmp_path / command)[command])
        assert not (tmp_path / command / "manifest.json").exists()  # refused before the stage wrote records
        assert "auto_map" in message and "runs no code from a model folder" in message, command
    assert not marker.exists()


def test_the_report_stays_readable_with_a_huge_input_a_torn_prediction_and_a_damaged_record(
        tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r"
    assert main(commands(llama_dir, tmp_path, records)["extract"]) == 0
    lines = (records / "records.jsonl").read_text().splitlines()
    huge = json.loads(lines[0])
    tail = " filler" * 150_000  # about 1 MB of input past the teacher's words
    huge["input"] += tail
    damaged = json.loads(lines[1])
    damaged["word_spans"] = damaged["word_spans"][:-1]  # its word lists no longer agree
    (records / "records.jsonl").write_text("\n".join([json.dumps(huge), json.dumps(damaged), *lines[2:]]) + "\n")
    evaluation = tmp_path / "e"
    assert main(commands(llama_dir, tmp_path, evaluation)["evaluate"]) == 0
    with (evaluation / "predictions.jsonl").open("a") as handle:
        handle.write('{"id": "torn", "predic')
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert len(page) < 400_000  # the 1 MB input shows its first 2,000 characters
    assert "more characters: the whole input is in the records file" in page


def test_a_config_file_inside_the_output_a_pipe_as_config_and_odd_data_are_one_line(
        tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "s"
    output.mkdir()
    config = output / "config.yaml"
    config.write_text("steps: 2\n")
    message = one_line(capsys, ["train", *COMMON, "--student", str(llama_dir), "--output", str(output), "--config",
                                str(config), "--overwrite"])
    assert "contains the --config file" in message and config.read_text() == "steps: 2\n"
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in one_line(capsys, ["train", *COMMON, "--student", str(llama_dir), "--output",
                                                      str(tmp_path / "t"), "--config", str(fifo)])
    (tmp_path / "bytes.yaml").write_bytes(b"steps: \xff\xfe\n")
    assert "not UTF-8" in one_line(capsys, ["train", *COMMON, "--student", str(llama_dir), "--output",
                                            str(tmp_path / "t"), "--config", str(tmp_path / "bytes.yaml")])
    text = ["--task", "text", "--limit", "4", "--device", "cpu", "--teacher", str(llama_dir), "--top-k", "1",
            "--target", "gold"]
    (tmp_path / "twice.csv").write_text("input,label,label\na b c,x,y\nd e f,y,x\n")
    assert "more than once" in one_line(capsys, ["extract", *text, "--data", str(tmp_path / "twice.csv"),
                                                 "--output", str(tmp_path / "r1")])
    (tmp_path / "lists.jsonl").write_text('{"input": "a b c", "label": ["x", "y"]}\n{"input": "d e", "label": "y"}\n')
    assert "holds a list" in one_line(capsys, ["extract", *text, "--data", str(tmp_path / "lists.jsonl"),
                                               "--output", str(tmp_path / "r2")])


MANIFEST_DAMAGE = {
    "not an object": [],
    "identity a list": {"identity": [1, 2], "complete": True},
    "identity text": {"identity": "x", "complete": True},
    "summary a list": "summary",
    "complete as text": "complete",
    "versions a number": "versions",
}


@pytest.mark.parametrize("damage", list(MANIFEST_DAMAGE))
def test_a_damaged_manifest_is_one_line_or_read_around_never_a_traceback(
        damage: str, tmp_path: Path, llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r"
    extract = commands(llama_dir, tmp_path, records)["extract"]
    assert main(extract) == 0
    manifest = json.loads((records / "manifest.json").read_text())
    change = MANIFEST_DAMAGE[damage]
    if isinstance(change, str):
        manifest[change] = [] if change == "summary" else ("yes" if change == "complete" else 7)
    else:
        manifest = change
    (records / "manifest.json").write_text(json.dumps(manifest))
    for arguments in (extract, ["train", *COMMON, "--student", str(llama_dir), "--output", str(tmp_path / "s"),
                                "--mode", "multitask", "--rationales", str(records), "--steps", "1",
                                "--batch-size", "2"],
                      ["report", str(records), "--output", str(tmp_path / "report.html")],
                      ["analyze", str(records), "--output", str(tmp_path / "a")]):
        code = main(arguments)
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (arguments[0], err[-500:])
        if code == 2:
            assert err.strip().splitlines()[-1].startswith("tokendistill: error: ")


def test_trusting_a_model_folders_code_is_asked_for_and_recorded(tmp_path: Path, llama_dir: Path) -> None:
    from tokendistill.models import refuse_remote_code

    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoConfig": "x.Y"}}))
    with pytest.raises(Exception, match="--trust-remote-code"):
        refuse_remote_code(str(model))
    refuse_remote_code(str(model), trusted=True)  # asked for: not refused
    output = tmp_path / "s"
    assert main(["train", *COMMON, "--student", str(llama_dir), "--output", str(output), "--steps", "1",
                 "--batch-size", "2", "--trust-remote-code"]) == 0
    assert "trust_remote_code: true" in (output / "config.yaml").read_text()
