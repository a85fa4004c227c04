"""Property tests: loaders, formatters and answer parsers take arbitrary text without crashing.

Anything they accept round-trips; anything they refuse is refused with a UserError (one line for the CLI),
never another exception.
"""

from __future__ import annotations

import contextlib
import csv
import json
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tokendistill.errors import UserError
from tokendistill.tasks import get_task, load_examples
from tokendistill.tasks.base import first_line, normalize_answer

# Any Unicode scalar value except surrogates (which cannot be written as UTF-8 at all).
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
# Huge strings by repetition: drawing 20k random characters each time would starve hypothesis of entropy.
huge_text = st.builds(lambda piece, times: piece * times, unicode_text.filter(bool), st.integers(500, 5_000))


def load_text_task(path: Path) -> list:
    return load_examples(get_task("text"), "train", str(path))


@settings(max_examples=40)
@given(rows=st.lists(st.tuples(st.one_of(unicode_text, huge_text), unicode_text), min_size=1, max_size=5))
def test_jsonl_rows_round_trip_or_are_refused(rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.jsonl"
        path.write_text("".join(json.dumps({"input": i, "label": label}) + "\n" for i, label in rows), encoding="utf-8")
        try:
            examples = load_text_task(path)
        except UserError:
            assert any(not i.strip() or not label.strip() for i, label in rows)
            return
    # Texts come back as they were, in Unicode NFC (every loaded example is normalised: issue 16).
    assert [example.input for example in examples] == [unicodedata.normalize("NFC", i) for i, _ in rows]
    assert [example.target for example in examples] == [unicodedata.normalize("NFC", label.strip()) for _, label in rows]


@settings(max_examples=40)
@given(rows=st.lists(st.tuples(unicode_text, unicode_text), min_size=1, max_size=5))
def test_csv_rows_round_trip_or_are_refused(rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["input", "label"])
            writer.writerows(rows)
        try:
            examples = load_text_task(path)
        except UserError:
            return
    # CSV readers may normalise line endings inside quoted fields; the words must survive (in NFC, as every
    # input is read: a compatibility ideograph such as U+F9FE becomes its canonical twin).
    assert [example.input.split() for example in examples] == [unicodedata.normalize("NFC", i).split() for i, _ in rows]


@settings(max_examples=60)
@given(content=st.binary(max_size=400))
@example(content=b"")
@example(content=b"[1, 2]")
@example(content=b'[{"input": "a"}, ')
@example(content=b'input,label\n"a,b\n')
def test_arbitrary_bytes_as_a_data_file_never_crash(content: bytes) -> None:
    for suffix in (".jsonl", ".csv", ".json"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"train{suffix}"
            path.write_bytes(content)
            with contextlib.suppress(UserError):
                load_text_task(path)


@settings(max_examples=60)
@given(question=unicode_text, choices=st.lists(unicode_text, min_size=1, max_size=5), pick=st.integers(0, 4))
def test_cqa_formatter_keeps_every_piece_of_text(question: str, choices: list[str], pick: int) -> None:
    record = {"id": "q", "question": question, "choices": choices, "answer": choices[pick % len(choices)]}
    try:
        example = get_task("cqa").format(record, 0, "train")
    except UserError:
        assert not question.strip() or not record["answer"].strip()
        return
    assert example.input.startswith(question)
    assert all(choice in example.input for choice in choices)
    spans = example.role_spans()
    assert spans[-1][1] == len(example.input)
    assert example.input[spans[0][0] : spans[0][1]] == question


@settings(max_examples=60)
@given(premise=unicode_text, hypothesis=unicode_text, label=st.one_of(unicode_text, st.integers(-3, 5)))
def test_nli_formatter_accepts_exactly_the_three_labels(premise: str, hypothesis: str, label: str | int) -> None:
    record = {"premise": premise, "hypothesis": hypothesis, "label": label}
    try:
        example = get_task("esnli").format(record, 0, "train")
    except UserError:
        return
    assert example.target in ("entailment", "neutral", "contradiction")
    assert premise in example.input and hypothesis in example.input


@given(text=st.one_of(unicode_text, huge_text))
def test_answer_parsers_are_total_and_idempotent(text: str) -> None:
    normalized = normalize_answer(text)
    assert normalize_answer(normalized) == normalized
    line = first_line(text)
    assert "\n" not in line and line == line.strip()
    cqa = get_task("cqa").format({"question": "q?", "choices": ["a b", "c"], "answer": "c"}, 0, "test")
    assert get_task("cqa").score(text, cqa) in (True, False)
    nli = get_task("anli1").format({"premise": "p", "hypothesis": "h", "label": 0}, 0, "test")
    assert get_task("anli1").score(text, nli) in (True, False)
