"""A trained student's record and prompt: one owner, typed and versioned, read alike by every stage."""

import json
from pathlib import Path

import pytest

from tokendistill.errors import UserError
from tokendistill.student import (
    RECORD_VERSION,
    StudentPrompt,
    StudentRecord,
    TaskMarker,
    find_record,
    load_record,
    record_or_none,
    training_prompt,
)
from tokendistill.tasks.base import ANSWER_CUE
from tokendistill.training.modes import MODES, TrainingRow


def test_a_record_round_trips_and_keeps_the_version_1_names(tmp_path: Path) -> None:
    record = StudentRecord(identity="abc", mode="multitask", task="esnli", steps=100, thread_history=[2],
                           prompt=StudentPrompt("", TaskMarker.SHARED_PROMPT, False, None),
                           config={"seed": 3}, inputs={"student_fingerprint": "x"})
    record.save(tmp_path)
    written = json.loads((tmp_path / "tokendistill.json").read_text())
    assert written["record_version"] == RECORD_VERSION and written["task_marker"] == "shared_prompt"
    assert written["predict_prefix"] == "" and written["is_encoder_decoder"] is False
    assert load_record(tmp_path) == record


def test_a_version_1_record_reads_as_its_prompt_was(tmp_path: Path) -> None:
    (tmp_path / "tokendistill.json").write_text(json.dumps({
        "identity": "old", "mode": "multitask", "predict_prefix": "predict: ", "task_marker": "encoder",
        "answer_separator": None, "is_encoder_decoder": True, "steps": 5, "config": {}, "inputs": {}}))
    record = load_record(tmp_path)
    assert record.version == 1 and record.prompt == StudentPrompt("predict: ", TaskMarker.ENCODER, True, None)
    assert record.prompt.parts() == ("predict: ", "", "")


@pytest.mark.parametrize("damage", [{"steps": "five"}, {"task_marker": "sideways"}, {"config": []},
                                    {"labels": "a,b"}, {"is_encoder_decoder": "yes"}])
def test_a_damaged_record_is_one_line_for_a_stage_and_none_for_a_summary(damage: dict, tmp_path: Path) -> None:
    (tmp_path / "tokendistill.json").write_text(json.dumps({"identity": "x", "mode": "standard", **damage}))
    with pytest.raises(UserError, match="tokendistill.json is damaged"):
        load_record(tmp_path)
    assert record_or_none(tmp_path) is None


def test_a_plain_model_has_no_record(tmp_path: Path) -> None:
    assert find_record(tmp_path) is None
    with pytest.raises(UserError, match="not a student folder"):
        load_record(tmp_path)


@pytest.mark.parametrize(("marker", "seq2seq", "parts"), [
    (TaskMarker.ENCODER, False, ("predict: ", ANSWER_CUE, "")),
    (TaskMarker.ENCODER, True, ("predict: ", "", "")),
    (TaskMarker.DECODER, True, ("", "", "predict:")),
    (TaskMarker.SHARED_PROMPT, False, ("", ANSWER_CUE, "")),
])
def test_the_prompt_a_mode_learns_in_each_layout(marker: TaskMarker, seq2seq: bool, parts: tuple) -> None:
    mode = MODES.get("multitask")
    assert training_prompt(mode.predict_prefix, mode.answer_separator, marker, seq2seq).parts() == parts


def test_the_marker_owns_its_row_layout_and_its_checks() -> None:
    rows = [[TrainingRow("predict: a b", "x", "label"), TrainingRow("explain: a b", "a", "rationale")]]
    assert TaskMarker.ENCODER.layout(rows) == rows
    decoder = TaskMarker.DECODER.layout(rows)[0]
    assert [(r.source, r.decoder_prompt) for r in decoder] == [("a b", "predict:"), ("a b", "explain:")]
    shared = TaskMarker.SHARED_PROMPT.layout(rows)[0]
    assert all(r.shared_prompt and r.source == "a b" for r in shared) and shared[1].cue == "\nExplanation:"
    assert TaskMarker.SHARED_PROMPT.problem("multitask", "predict: ", True, 1) is not None  # seq2seq
    assert TaskMarker.DECODER.problem("multitask", "predict: ", False, 1) is not None  # decoder-only
    assert TaskMarker.DECODER.problem("standard", "", True, 1) is not None  # no markers to move
    assert TaskMarker.DECODER.problem("multitask", "predict: ", True, 1) is None
    with pytest.raises(UserError, match="unknown task marker"):
        TaskMarker.of("sideways")
