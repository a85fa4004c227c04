"""`tokendistill explain`: one input, the teacher's answer and its words, as extract would store them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tokendistill.attribution.teacher import Teacher
from tokendistill.cli import main

INPUT = "Premise: A man kicks a red ball in the park. Hypothesis: Someone plays outside."


def test_explain_marks_the_top_words_of_the_input(llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for target in ("teacher", "choice"):
        assert main(["explain", "--teacher", str(llama_dir), "--task", "esnli", "--target", target, "--top-k", "3",
                     "--device", "cpu", INPUT]) == 0
        answer, marked, words = capsys.readouterr().out.splitlines()
        assert answer.startswith("teacher's answer: ")
        if target == "choice":
            assert answer.split(": ", 1)[1] in ("entailment", "neutral", "contradiction")
        assert marked.replace("[", "").replace("]", "") == INPUT
        assert re.findall(r"\[([^\]]+)\]", marked) == words.split(": ", 1)[1].split() and len(words.split()) == 4


def test_a_teacher_that_answers_nothing_still_gets_an_explanation(
        llama_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Teacher, "generate", lambda self, examples, max_new_tokens: [""] * len(examples))
    code = main(["explain", "--teacher", str(llama_dir), "--task", "esnli", "--device", "cpu", INPUT])
    captured = capsys.readouterr()
    assert code == 2 and "answered nothing" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_explain_a_text_task_with_the_labels_its_teacher_learned(tmp_path: Path, llama_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\n" + "".join(f"review {i} was {'good' if i % 2 else 'bad'},"
                                                   f"{'positive' if i % 2 else 'negative'}\n" for i in range(12)))
    assert main(["train", "--task", "text", "--data", str(data), "--input-column", "review", "--label-column",
                 "sentiment", "--student", str(llama_dir), "--output", str(tmp_path / "teacher"), "--steps", "1",
                 "--batch-size", "4", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["explain", "--teacher", str(tmp_path / "teacher"), "--target", "choice", "--device", "cpu",
                 "review 99 was good"]) == 0
    assert capsys.readouterr().out.split("\n")[0].split(": ")[1] in ("negative", "positive")
