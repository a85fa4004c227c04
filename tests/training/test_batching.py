"""A step's rows cut into forward passes: every row once, at most ceil(rows / parts) a pass, and rows that read
one shared source together."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoTokenizer

from tokendistill.training.batching import forward_batches
from tokendistill.training.modes import TrainingRow

WORDS = "tiger river truck red bus cat mat lion tree small yellow green old".split()


@pytest.fixture(scope="module")
def tokenizer(t5_dir: Path):
    return AutoTokenizer.from_pretrained(t5_dir)


rows_strategy = st.lists(
    st.tuples(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), st.lists(st.sampled_from(WORDS), max_size=8),
              st.sampled_from(["label", "rationale"])),
    min_size=1, max_size=24)


@given(rows=rows_strategy, parts=st.integers(1, 6), by_length=st.booleans())
def test_every_row_goes_once_into_passes_no_larger_than_the_cap(tokenizer, rows, parts, by_length) -> None:
    training_rows = [TrainingRow(" ".join(source), " ".join(target), group) for source, target, group in rows]
    passes = forward_batches(tokenizer, training_rows, parts, by_length)
    cap = -(-len(training_rows) // parts)
    assert all(1 <= len(batch) <= cap for batch in passes)
    assert sorted(map(id, (row for batch in passes for row in batch))) == sorted(map(id, training_rows))


def test_without_length_batching_an_examples_rows_stay_consecutive(tokenizer) -> None:
    rows = [TrainingRow(f"{word} input", word, group) for word in WORDS[:4] for group in ("label", "rationale")]
    assert forward_batches(tokenizer, rows, 2, by_length=False) == [rows[:4], rows[4:]]


def test_rows_that_share_a_source_are_kept_together_when_that_is_cheaper(tokenizer) -> None:
    shared = "the tiger went near the river and the lion slept under a small green tree"
    rows = [TrainingRow(shared, target, "label", shared_prompt=True) for target in ("tiger", "river lion")]
    rows += [TrainingRow("a red bus", "bus", "label", shared_prompt=True)]
    passes = forward_batches(tokenizer, rows, 1, by_length=True)
    assert [row for batch in passes for row in batch if row.source == shared] == rows[:2]
    assert any(rows[0] in batch and rows[1] in batch for batch in passes)
