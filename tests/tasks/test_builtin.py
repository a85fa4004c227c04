import json
from pathlib import Path

import pytest

from tokendistill.errors import UserError
from tokendistill.tasks import TEMPLATE, get_task, load_examples

CQA_RECORD = {
    "id": "q1",
    "question": "Where do beavers get supplies?",
    "choices": ["british columbia", "body of water", "wooded area", "pay debts", "zoo"],
    "answer": "wooded area",
}


def test_cqa_input_is_formatted_as_dss_formats_it() -> None:
    example = get_task("cqa").format(CQA_RECORD, 0, "train")
    assert example.input == (
        "Where do beavers get supplies?\nAnswer Choices:\n(a) british columbia\n(b) body of water"
        "\n(c) wooded area\n(d) pay debts\n(e) zoo"
    )
    assert example.target == "wooded area"
    template = "".join(s.text for s in example.segments if s.role == TEMPLATE)
    assert "Answer Choices:" in template and "(c) " in template and "wooded" not in template


def test_cqa_score_accepts_letter_and_text() -> None:
    task = get_task("cqa")
    example = task.format(CQA_RECORD, 0, "train")
    assert task.score("wooded area", example)
    assert task.score("(c) wooded area.", example)
    assert task.score("(c)", example)
    assert not task.score("zoo", example)


def test_svamp_scores_by_value() -> None:
    task = get_task("svamp")
    example = task.format({"input": "He has 3 apples and buys 4.\nHow many?", "label": "( 3.0 + 4.0 )"}, 0, "test")
    assert example.input == "He has 3 apples and buys 4.\nHow many?"
    assert [s.role for s in example.segments] == ["body", TEMPLATE, "question"]
    assert task.score("( 4.0 + 3.0 )", example)
    assert not task.score("( 4.0 - 3.0 )", example)


def test_nli_maps_integer_labels_and_rejects_others() -> None:
    task = get_task("esnli")
    example = task.format({"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": 0}, 3, "test")
    assert example.target == "entailment" and example.id == "test-3"
    assert task.score("entailment", example) and not task.score("neutral", example)
    with pytest.raises(UserError, match="outside 0..2"):
        task.format({"premise": "a", "hypothesis": "b", "label": 5}, 0, "test")
    with pytest.raises(UserError, match="not one of"):
        task.format({"premise": "a", "hypothesis": "b", "label": "maybe"}, 0, "test")


def test_text_task_reads_user_columns_and_names_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"review": "great film", "stars": "positive"}) + "\n")
    task = get_task("text", input_column="review", label_column="stars")
    [example] = load_examples(task, "train", str(path))
    assert (example.input, example.target) == ("great film", "positive")
    with pytest.raises(UserError, match="column 'text'"):
        load_examples(get_task("text", input_column="text"), "train", str(path))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_local_formats_load_the_same_records(tmp_path: Path, suffix: str) -> None:
    import datasets

    rows = {"input": ["one two", "three four"], "label": ["a", "b"]}
    path = tmp_path / f"train{suffix}"
    dataset = datasets.Dataset.from_dict(rows)
    {".jsonl": dataset.to_json, ".csv": dataset.to_csv, ".parquet": dataset.to_parquet}[suffix](str(path))
    examples = load_examples(get_task("text"), "train", str(tmp_path))
    assert [(e.input, e.target) for e in examples] == [("one two", "a"), ("three four", "b")]


def test_missing_data_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_examples(get_task("cqa"), "train", str(tmp_path / "nope"))


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(UserError, match="choose one of: anli1, cqa, esnli"):
        get_task("squad")


@pytest.mark.parametrize(("task", "split", "count"), [("cqa", "test", 1221), ("svamp", "test", 200),
                                                      ("esnli", "valid", 9842), ("anli1", "test", 1000)])
def test_dss_layout_loads_every_task(dss_data: Path, task: str, split: str, count: int) -> None:
    examples = load_examples(get_task(task), split, str(dss_data))
    assert len(examples) == count
    assert all(example.input and example.target for example in examples)


def test_first_line_skips_leading_blank_lines() -> None:
    from tokendistill.tasks.base import first_line

    assert first_line("\n (d) corn fields\nQ: next") == "(d) corn fields"
    assert first_line("\n\n") == ""
