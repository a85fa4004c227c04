"""A user's own data, the ways it used to fail silently: a teacher that answers nothing, one file serving every
split, rationales paired with the wrong rows."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from tokendistill.attribution.teacher import Teacher
from tokendistill.cli import main
from tokendistill.errors import UserError
from tokendistill.tasks import get_task, held_out, load_examples

REVIEWS = ["great phone, the battery lasts", "terrible screen and slow", "loved the camera", "it broke in a week",
           "fast delivery and works well", "the worst purchase ever", "excellent value for money", "not worth it",
           "works as described", "stopped charging after a day", "very happy with it", "cheap plastic, cracked"]


def write_reviews(path: Path, rows: list[tuple[str, str]] | None = None) -> Path:
    rows = rows or [(text, "positive" if i % 2 == 0 else "negative") for i, text in enumerate(REVIEWS * 3)]
    rows = [(f"{text} ({i})", label) for i, (text, label) in enumerate(rows)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        writer.writerows(rows)
    return path


TEXT = ["--task", "text", "--input-column", "review", "--label-column", "sentiment", "--device", "cpu"]


def extract(data: Path, teacher: Path, output: Path, *extra: str) -> int:
    return main(["extract", *TEXT, "--data", str(data), "--teacher", str(teacher), "--output", str(output),
                 "--top-k", "2", "--max-new-tokens", "3", *extra])


def test_a_teacher_that_answers_nothing_is_reported_and_refused_when_strict(
    tmp_path: Path, t5_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(Teacher, "generate", lambda self, examples, max_new_tokens: [""] * len(examples))
    data = write_reviews(tmp_path / "reviews.csv")
    with caplog.at_level("WARNING"):
        assert extract(data, t5_dir, tmp_path / "rationales") == 0
    summary = json.loads((tmp_path / "rationales" / "manifest.json").read_text())["summary"]
    assert summary["gold_fallbacks"] == 36 and summary["teacher_accuracy"] == 0.0
    assert summary["majority_accuracy"] == pytest.approx(0.5)
    assert "36 of 36 examples: the teacher answered nothing" in caplog.text
    assert "near the majority-label rate (50.0%)" in caplog.text
    caplog.clear()
    assert extract(data, t5_dir, tmp_path / "strict", "--strict") == 2
    assert "answered nothing" in capsys.readouterr().err
    assert (tmp_path / "strict" / "records.jsonl").exists()  # computed work is kept
    train = ["train", *TEXT, "--data", str(data), "--student", str(t5_dir), "--mode", "multitask", "--rationales",
             str(tmp_path / "rationales"), "--steps", "1", "--batch-size", "4"]
    with caplog.at_level("WARNING"):
        assert main([*train, "--output", str(tmp_path / "student")]) == 0
    assert "answered nothing" in caplog.text
    assert main([*train, "--output", str(tmp_path / "strict-student"), "--strict"]) == 2
    assert "(--strict)" in capsys.readouterr().err and not (tmp_path / "strict-student").exists()


def test_one_file_is_never_reported_as_its_own_test_split(tmp_path: Path, t5_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    common = [*TEXT, "--data", str(data)]
    assert main(["train", *common, "--student", str(t5_dir), "--output", str(tmp_path / "s"), "--steps", "1",
                 "--batch-size", "4"]) == 0
    assert main(["evaluate", *common, "--model", str(tmp_path / "s"), "--output", str(tmp_path / "e"),
                 "--max-new-tokens", "3"]) == 2
    error = capsys.readouterr().err
    assert "36 of 36 rows of split 'test' are rows" in error and "--test-fraction" in error
    assert not (tmp_path / "e" / "metrics.json").exists()
    # A student of an earlier version, whose digests file had the old name, is refused the same way.
    (tmp_path / "s" / "train_input_digests.txt").rename(tmp_path / "s" / "train_inputs.txt")
    assert main(["evaluate", *common, "--model", str(tmp_path / "s"), "--output", str(tmp_path / "e"),
                 "--max-new-tokens", "3"]) == 2
    assert "36 of 36 rows of split 'test' are rows" in capsys.readouterr().err
    # Carved out: a held-out share, by content, that training never sees.
    carve = [*common, "--test-fraction", "0.25"]
    assert main(["train", *carve, "--student", str(t5_dir), "--output", str(tmp_path / "s2"), "--steps", "1",
                 "--batch-size", "4"]) == 0
    assert main(["evaluate", *carve, "--model", str(tmp_path / "s2"), "--output", str(tmp_path / "e2"),
                 "--max-new-tokens", "3"]) == 0
    task = get_task("text", input_column="review", label_column="sentiment")
    train_rows = load_examples(task, "train", str(data), test_fraction=0.25)
    test_rows = load_examples(task, "test", str(data), test_fraction=0.25)
    assert len(train_rows) + len(test_rows) == 36 and 0 < len(test_rows) < 18
    assert not {e.input for e in train_rows} & {e.input for e in test_rows}
    assert all(held_out(e.input, 0.25) for e in test_rows)
    assert json.loads((tmp_path / "e2" / "metrics.json").read_text())["examples"] == len(test_rows)


def test_rows_without_ids_keep_their_rationales_through_a_shuffle(tmp_path: Path, t5_dir: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    assert extract(data, t5_dir, tmp_path / "rationales", "--target", "gold") == 0
    lines = data.read_text().splitlines()
    random.Random(0).shuffle(body := lines[1:])
    data.write_text("\n".join([lines[0], *body]) + "\n")
    # Ids come from the rows' content: the shuffled file pairs every row with its own words.
    from tokendistill.config import TrainConfig
    from tokendistill.training.modes import MODES
    from tokendistill.training.rows import build_rows

    config = TrainConfig(task="text", input_column="review", label_column="sentiment", data=str(data),
                         student=str(t5_dir), output=str(tmp_path / "s"), mode="multitask",
                         rationales=str(tmp_path / "rationales"))
    task = get_task("text", input_column="review", label_column="sentiment")
    examples = load_examples(task, "train", str(data))
    records = {json.loads(line)["id"]: json.loads(line) for line in
               (tmp_path / "rationales" / "records.jsonl").read_text().splitlines()}
    rows = build_rows(MODES.get("multitask"), examples, config)
    assert all(records[example.id]["input"] == example.input for example in examples)
    assert len(rows) == len(examples)


def test_rationales_of_reordered_rows_with_positional_ids_are_refused(tmp_path: Path, t5_dir: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # e-SNLI-format rows without ids get ids by position; a reordered file must not pair them with old words.
    rows = [{"premise": f"A man {verb} a ball in the park number {i}.", "hypothesis": f"Someone {verb} something.",
             "label": i % 3} for i, verb in enumerate(["kicks", "throws", "holds", "drops", "finds", "hides"] * 2)]
    data = tmp_path / "esnli"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--task", "esnli", "--data", str(data), "--device", "cpu"]
    assert main(["extract", *common, "--teacher", str(t5_dir), "--output", str(tmp_path / "r"), "--top-k", "2",
                 "--target", "gold"]) == 0
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    assert main(["train", *common, "--student", str(t5_dir), "--output", str(tmp_path / "s"), "--mode", "multitask",
                 "--rationales", str(tmp_path / "r"), "--steps", "1", "--batch-size", "4"]) == 2
    assert "12 of 12 rationale records" in capsys.readouterr().err
    assert not (tmp_path / "s" / "tokendistill.json").exists()


def test_a_label_column_is_a_closed_set(tmp_path: Path, t5_dir: Path, llama_dir: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    task = get_task("text", input_column="review", label_column="sentiment")
    examples = load_examples(task, "train", str(data))
    assert task.labels == ("negative", "positive") and all(e.choices == task.labels for e in examples)
    from tokendistill.tasks import chance_accuracy

    assert chance_accuracy(task, examples) == 0.5
    free = get_task("text", input_column="review", label_column="sentiment", free_text=True)
    assert all(e.choices == () for e in load_examples(free, "train", str(data)))
    carve = [*TEXT, "--data", str(data), "--test-fraction", "0.25"]
    assert main(["teacher-eval", *carve, "--teacher", str(llama_dir), "--output", str(tmp_path / "check"),
                 "--max-new-tokens", "3"]) == 0
    check = json.loads((tmp_path / "check" / "teacher_eval.json").read_text())
    assert {"generation", "choice_sum", "choice_mean"} <= set(check["accuracy"]) and check["chance_accuracy"] == 0.5
    assert extract(data, llama_dir, tmp_path / "r", "--target", "choice", "--test-fraction", "0.25") == 0
    records = [json.loads(line) for line in (tmp_path / "r" / "records.jsonl").read_text().splitlines()]
    assert {r["teacher_answer"] for r in records} <= {"negative", "positive"}
    assert main(["train", *carve, "--student", str(llama_dir), "--output", str(tmp_path / "s"), "--mode",
                 "multitask", "--rationales", str(tmp_path / "r"), "--steps", "2", "--batch-size", "4"]) == 0
    assert main(["evaluate", *carve, "--model", str(tmp_path / "s"), "--output", str(tmp_path / "e"),
                 "--answer", "choice_sum", "--max-new-tokens", "3"]) == 0
    predictions = [json.loads(line) for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()]
    assert predictions and {p["prediction"] for p in predictions} <= {"negative", "positive"}


@pytest.mark.slow
def test_the_student_leaves_with_a_card_and_answers_as_evaluated(tmp_path: Path, llama_dir: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import torch  # noqa: F401  (the card's snippet runs in this process)

    data = write_reviews(tmp_path / "reviews.csv")
    carve = [*TEXT, "--data", str(data), "--test-fraction", "0.25"]
    assert extract(data, llama_dir, tmp_path / "r", "--target", "gold", "--test-fraction", "0.25") == 0
    student = tmp_path / "student"
    assert main(["train", *carve, "--student", str(llama_dir), "--output", str(student), "--mode", "multitask",
                 "--rationales", str(tmp_path / "r"), "--steps", "3", "--batch-size", "4", "--learning-rate",
                 "1e-3"]) == 0
    assert not list(student.glob("chat_template*"))
    before = {path.name: path.read_bytes() for path in student.iterdir() if path.is_file()}
    assert main(["evaluate", *carve, "--model", str(student), "--output", str(tmp_path / "e"),
                 "--max-new-tokens", "4"]) == 0
    # Inputs are read-only: without --update-card the student's folder is as it was, byte for byte.
    assert {path.name: path.read_bytes() for path in student.iterdir() if path.is_file()} == before
    assert main(["evaluate", *carve, "--model", str(student), "--output", str(tmp_path / "e"),
                 "--max-new-tokens", "4", "--update-card"]) == 0
    card = (student / "README.md").read_text()
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    # A local starting folder is never published as base_model (a push would leak a private path).
    assert card.startswith("---\nlibrary_name: transformers\n") and "base_model:" not in card
    assert "| mode | multitask |" in card and "| labels | negative, positive |" in card
    assert f"{100 * metrics['accuracy']:.1f}%" in card and "tokendistill train --task text" in card
    records = [json.loads(line) for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()]
    task = get_task("text", input_column="review", label_column="sentiment")
    inputs = {e.id: e.input for e in load_examples(task, "test", str(data), test_fraction=0.25)}
    texts = [inputs[r["id"]] for r in records]
    capsys.readouterr()
    assert main(["predict", "--model", str(student), "--max-new-tokens", "4", *texts]) == 0
    assert capsys.readouterr().out.splitlines() == [r["prediction"] for r in records]
    from tokendistill.predict import answer

    assert answer(student, texts, max_new_tokens=4) == [r["prediction"] for r in records]
    code = card.split("```python\n")[1].split("```")[0].replace("max_new_tokens=32", "max_new_tokens=4")
    for text, record in zip(texts, records):
        scope = {"text": text}
        exec(code.replace("print(answer)", ""), scope)  # plain transformers, as a reader of the card would
        assert scope["answer"] == record["prediction"]


def test_evaluate_takes_the_task_and_data_the_student_was_trained_on(tmp_path: Path, t5_dir: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    assert main(["train", *TEXT, "--data", str(data), "--test-fraction", "0.25", "--student", str(t5_dir),
                 "--output", str(tmp_path / "s"), "--steps", "1", "--batch-size", "4"]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "s"), "--output", str(tmp_path / "e"), "--max-new-tokens", "3",
                 "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    written = (tmp_path / "e" / "config.yaml").read_text()
    assert metrics["task"] == "text" and "input_column: review" in written and "test_fraction: 0.25" in written
    assert 0 < metrics["examples"] < 36  # the held-out rows only
    assert main(["evaluate", "--model", str(t5_dir), "--output", str(tmp_path / "e2")]) == 2
    assert "pass --task" in capsys.readouterr().err


def test_the_python_api_takes_rows_in_memory(tmp_path: Path, t5_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from tokendistill import EvaluateConfig, ExtractConfig, TrainConfig, evaluate, extract, train

    monkeypatch.setenv("TOKENDISTILL_CACHE", str(tmp_path / "cache"))
    rows = [{"review": f"{text} ({i})", "sentiment": "positive" if i % 2 == 0 else "negative"}
            for i, text in enumerate(REVIEWS * 3)]
    task = dict(task="text", input_column="review", label_column="sentiment", test_fraction=0.25, device="cpu")
    words = extract(ExtractConfig(**task, data=rows, teacher=str(t5_dir), output=str(tmp_path / "r"), top_k=2,
                                  max_new_tokens=3, target="gold"))
    as_dataset = datasets.Dataset.from_list(rows)  # the same rows as a Dataset: the same file, the same words
    student = train(TrainConfig(**task, data=as_dataset, student=str(t5_dir), output=str(tmp_path / "s"),
                                mode="multitask", rationales=str(words), steps=1, batch_size=4))
    metrics = evaluate(EvaluateConfig(**task, data=rows, model=str(student), output=str(tmp_path / "e"),
                                      max_new_tokens=3))
    assert 0 < metrics["examples"] < 36
    assert len(list((tmp_path / "cache" / "data").glob("rows-*.jsonl"))) == 1
    with pytest.raises(UserError, match="a list of dicts or a datasets.Dataset"):
        extract(ExtractConfig(**task, data=42, teacher=str(t5_dir), output=str(tmp_path / "x")))


def test_analyze_of_a_classification_shows_words_not_a_page_of_n_a(tmp_path: Path, t5_dir: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv")
    assert extract(data, t5_dir, tmp_path / "r", "--target", "gold") == 0
    assert main(["analyze", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "analysis" / "analysis.md").read_text()
    assert "cannot be measured" in text and "| word | count |" in text and "| input part |" in text
    assert "n/a | n/a" not in text
    from tokendistill.report import ReportConfig, build_report

    page = build_report(ReportConfig(run_dir=str(tmp_path / "r"))).read_text()
    assert "cannot be measured" in page and "<td>n/a</td><td>n/a</td>" not in page
