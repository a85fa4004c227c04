"""The one rule of what a stage does with its output folder (folders.open_output), and each stage under it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tokendistill.artefacts import EVALUATION_FOLDER, FolderKind
from tokendistill.cli import main
from tokendistill.errors import UserError
from tokendistill.folders import Found, Holds, open_output

KIND = FolderKind("widget folder", "widgets")


def _never(folder: Path) -> Found:
    raise AssertionError("an empty folder is not inspected")


def test_an_absent_or_empty_folder_holds_nothing(tmp_path: Path) -> None:
    assert open_output(tmp_path / "absent", KIND, _never, False).holds is Holds.NOTHING
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".tokendistill.lock").write_text("")
    assert open_output(tmp_path / "empty", KIND, _never, False).holds is Holds.NOTHING


def test_a_folder_holding_only_our_own_config_is_a_run_killed_while_loading(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"output": str(folder), "steps": 3}))
    assert open_output(folder, KIND, _never, False).holds is Holds.NOTHING


def test_someone_elses_config_yaml_is_never_taken_for_ours(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("learning_rate: 3\n")
    for overwrite in (False, True):  # never ours to clear, so --overwrite is refused too, and never suggested
        with pytest.raises(UserError, match=r"project exists and is not a widget folder \(it holds files tokendistill "
                                            r"did not write\); choose another --output: a new or empty folder$"):
            open_output(folder, KIND, lambda _: Found(Holds.FOREIGN), overwrite)
    assert (folder / "config.yaml").read_text() == "learning_rate: 3\n"


@pytest.mark.parametrize("holds", [Holds.FINISHED, Holds.PARTIAL])
def test_the_same_run_is_returned_to_skip_or_resume(tmp_path: Path, holds: Holds) -> None:
    (tmp_path / "a").write_text("x")
    for overwrite in (False, True):
        found = open_output(tmp_path, KIND, lambda _: Found(holds), overwrite)
        assert found == Found(holds)  # never cleared: --overwrite replaces another run only


def test_another_run_is_refused_naming_what_differs_or_cleared_when_asked(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    other = Found(Holds.OTHER, ("seed", "steps"))
    with pytest.raises(UserError, match=r"holds widgets of a different configuration \(differs in: seed, steps\)"):
        open_output(tmp_path, KIND, lambda _: other, False)
    found = open_output(tmp_path, KIND, lambda _: other, True)
    assert found.clear and found.changed == ("seed", "steps")
    assert (tmp_path / "a").exists()  # the stage clears, when its inputs have loaded: never open_output


def test_a_damaged_file_is_refused_in_its_own_line_or_cleared_when_asked(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")

    def damaged(_: Path) -> Found:
        raise UserError("a is damaged; pass --overwrite")

    with pytest.raises(UserError, match="a is damaged"):
        open_output(tmp_path, KIND, damaged, False)
    assert open_output(tmp_path, KIND, damaged, True).clear


def test_every_stage_names_its_kind_in_the_same_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         llama_dir: Path) -> None:
    """A user's folder given as every stage's --output: one line each, exit 2, and the folder left as it was."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    common = ["--task", "keywords", "--limit", "4", "--device", "cpu"]
    commands = {
        "rationale folder": ["extract", *common, "--teacher", str(llama_dir), "--output", str(folder)],
        "student folder": ["train", *common, "--student", str(llama_dir), "--output", str(folder), "--steps", "1"],
        EVALUATION_FOLDER.name: ["evaluate", *common, "--model", str(llama_dir), "--output", str(folder)],
        "teacher check folder": ["teacher-eval", *common, "--teacher", str(llama_dir), "--output", str(folder)],
    }
    for name, arguments in commands.items():
        for overwrite in ([], ["--overwrite"]):
            assert main([*arguments, *overwrite]) == 2, name
            message = capsys.readouterr().err.strip().splitlines()[-1]
            assert f"exists and is not a {name} (it holds files tokendistill did not write); choose another --output" \
                in message and "--overwrite" not in message, message
    assert sorted(entry.name for entry in folder.iterdir()) == [".tokendistill.lock", "notes.txt"]


def test_teacher_eval_never_writes_into_the_teacher_it_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             llama_dir: Path) -> None:
    teacher = tmp_path / "teacher"
    shutil.copytree(llama_dir, teacher)
    before = {entry.name: entry.read_bytes() for entry in teacher.iterdir() if entry.is_file()}
    assert main(["teacher-eval", "--task", "keywords", "--teacher", str(teacher), "--output", str(teacher)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--output {teacher} is the teacher {teacher}; writing there would replace" in message, message
    assert {entry.name: entry.read_bytes() for entry in teacher.iterdir() if entry.is_file()} == before


def test_teacher_check_is_returned_when_done_and_another_is_refused(tmp_path: Path, llama_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tokendistill import teacher_eval as module
    from tokendistill.teacher_eval import TeacherEvalConfig, teacher_eval

    config = TeacherEvalConfig(task="keywords", teacher=str(llama_dir), output=str(tmp_path / "check"), limit=4,
                               max_new_tokens=2, device="cpu")
    first = teacher_eval(config, progress=False)
    assert json.loads((tmp_path / "check" / "teacher_eval.json").read_text()) == first
    monkeypatch.setattr(module, "load_model", lambda *a, **k: pytest.fail("a finished check loads no model"))
    assert teacher_eval(config, progress=False) == first
    with pytest.raises(UserError, match=r"holds a teacher check of a different configuration \(differs in: limit\)"):
        teacher_eval(TeacherEvalConfig(**{**config.__dict__, "limit": 3}), progress=False)
