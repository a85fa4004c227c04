"""What a newcomer meets first: the summaries a stage ends with, the leaks it refuses, the options it records."""

import json
from pathlib import Path

import pytest

from tokendistill.cli import main

COMMON = ["--task", "keywords", "--limit", "8", "--device", "cpu"]


def test_choosing_the_kept_weights_on_the_test_rows_is_refused(tmp_path: Path, llama_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", *COMMON, "--student", str(llama_dir), "--output", str(tmp_path / "s"), "--steps", "2",
                 "--eval-every", "1", "--keep-best", "--eval-split", "test"])
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "--keep-best --eval-split test" in message and not (tmp_path / "s" / "config.yaml").exists()


def test_extract_and_train_end_with_a_summary_and_the_next_command(tmp_path: Path, llama_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", *COMMON, "--teacher", str(llama_dir), "--output", str(tmp_path / "r"), "--top-k", "2",
                 "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert f"rationales: {tmp_path / 'r'}" in out and "the teacher was right on" in out and "of 8 examples" in out
    assert "next: tokendistill train --mode multitask" in out
    assert main(["train", *COMMON, "--student", str(llama_dir), "--output", str(tmp_path / "s"), "--steps", "2",
                 "--batch-size", "4", "--weight-decay", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "standard, 2 steps on 8 examples" in out and "final losses (step 2): loss" in out
    assert "next: tokendistill evaluate --model" in out
    record = json.loads((tmp_path / "s" / "tokendistill.json").read_text())
    assert record["config"]["weight_decay"] == 0.05 and "| weight decay | 0.05 |" in (tmp_path / "s" / "README.md").read_text()


def test_predictions_show_the_input_beside_its_id(tmp_path: Path, llama_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", *COMMON, "--model", str(llama_dir), "--output", str(tmp_path / "e"),
                 "--max-new-tokens", "2"]) == 0
    # It ends with a summary, as extract and train do, not the metrics file's JSON.
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("accuracy: ") and out[0].endswith("% on 8 test rows (generation)")
    assert "predictions, each with its input:" in out[1] and out[2].startswith("  next: tokendistill predict")
    records = [json.loads(line) for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()]
    assert all(record["input"] and len(record["input"]) <= 201 for record in records)


def test_teacher_eval_can_score_choices_without_generating(tmp_path: Path, llama_dir: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teacher-eval", *COMMON, "--teacher", str(llama_dir), "--output", str(tmp_path / "t"),
                 "--no-generate"]) == 0
    check = json.loads((tmp_path / "t" / "teacher_eval.json").read_text())
    assert set(check["accuracy"]) == {"choice_sum", "choice_mean"}
    out = capsys.readouterr().out
    assert "fine-tune it first" in out  # a tiny random teacher is near chance
    assert f"tokendistill train --mode standard --student {llama_dir} --task keywords" in out  # its own command
    assert main(["teacher-eval", "--task", "text", "--data", str(_text_file(tmp_path)), "--teacher", str(llama_dir),
                 "--no-generate", "--device", "cpu", "--split", "train", "--free-text"]) == 2


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "free.jsonl"
    path.write_text("".join(json.dumps({"input": f"text {i}", "label": f"free answer {i}"}) + "\n" for i in range(30)))
    return path


def test_eval_every_works_on_one_file_through_a_slice_of_the_training_part(tmp_path: Path, llama_dir: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\n" + "".join(
        f"review {i}: {'loved it' if i % 2 else 'awful'} {i},{'positive' if i % 2 else 'negative'}\n"
        for i in range(60)))
    common = ["--task", "text", "--data", str(data), "--input-column", "review", "--label-column", "sentiment",
              "--test-fraction", "0.2", "--device", "cpu"]
    arguments = ["train", *common, "--student", str(llama_dir), "--steps", "2", "--batch-size", "4",
                 "--eval-every", "1", "--keep-best"]
    # The training split itself is refused, and the message says how to hold rows out of one file.
    assert main([*arguments, "--output", str(tmp_path / "a"), "--eval-split", "train"]) == 2
    assert "--eval-split" in capsys.readouterr().err
    # The validation file missing, the rows are training rows: the message names --valid-fraction.
    assert main([*arguments, "--output", str(tmp_path / "a")]) == 2
    assert "--valid-fraction 0.1" in capsys.readouterr().err
    assert main([*arguments, "--output", str(tmp_path / "b"), "--limit", "30", "--eval-split", "train[30:40]"]) == 0
    record = json.loads((tmp_path / "b" / "tokendistill.json").read_text())
    assert record["best_step"] in (1, 2) and record["eval_split"] == "train[30:40]"


def test_a_closed_set_task_generates_as_many_tokens_as_its_longest_label(llama_dir: Path) -> None:
    from tokendistill.models import answer_length, load_model
    from tokendistill.tasks import get_task, load_examples

    tokenizer = load_model(str(llama_dir), device="cpu").tokenizer
    examples = load_examples(get_task("keywords"), "test", limit=20)
    longest = max(len(tokenizer(" " + label, add_special_tokens=False)["input_ids"])
                  for example in examples for label in example.choices)
    assert answer_length(tokenizer, examples, 64) == longest + 1 < 64
    open_ended = [example.__class__(example.id, example.segments, example.target) for example in examples]
    assert answer_length(tokenizer, open_ended, 64) == 64


def test_valid_fraction_carves_a_validation_split_disjoint_from_training_and_test(tmp_path: Path, llama_dir: Path
                                                                                 ) -> None:
    from tokendistill.tasks import get_task, load_examples

    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment\n" + "".join(
        f"review {i}: {'loved it' if i % 2 else 'awful'} {i},{'positive' if i % 2 else 'negative'}\n"
        for i in range(200)))
    task = get_task("text", input_column="review", label_column="sentiment")
    parts = {split: {e.input for e in load_examples(task, split, str(data), test_fraction=0.2, valid_fraction=0.15)}
             for split in ("train", "valid", "test")}
    assert sum(map(len, parts.values())) == 200 and all(parts.values())
    assert not (parts["train"] & parts["valid"] or parts["train"] & parts["test"] or parts["valid"] & parts["test"])
    # The test rows are those --test-fraction alone gives: adding a validation split moves no test row.
    assert parts["test"] == {e.input for e in load_examples(task, "test", str(data), test_fraction=0.2)}
    common = ["--task", "text", "--data", str(data), "--input-column", "review", "--label-column", "sentiment",
              "--test-fraction", "0.2", "--valid-fraction", "0.15", "--device", "cpu"]
    assert main(["train", *common, "--student", str(llama_dir), "--steps", "2", "--batch-size", "4",
                 "--eval-every", "1", "--keep-best", "--output", str(tmp_path / "s")]) == 0
    record = json.loads((tmp_path / "s" / "tokendistill.json").read_text())
    assert record["eval_split"] == "valid" and record["best_step"] in (1, 2)
    assert record["train_examples"] == len(parts["train"])
