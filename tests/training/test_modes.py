"""The modes beyond standard and multitask: their rows, the DSS rationale parser on real lines, accumulation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tokendistill.models import load_model
from tokendistill.rationales import reselect
from tokendistill.tasks import Example, Segment
from tokendistill.training.batching import forward_batches
from tokendistill.training.data import encode_rows, group_token_totals, pass_loss
from tokendistill.training.llm_rationales import load_llm_rationales, parse_llm_output
from tokendistill.training.modes import MODES, TrainingRow, answer_part

EXAMPLE = Example("e", (Segment("input", "the tiger went near the river"),), "animal")


def test_dss_mode_explains_with_the_llm_rationale() -> None:
    rows = MODES.get("dss").rows(EXAMPLE, {"llm_rationale": "Tigers are animals."})
    assert rows == [
        TrainingRow("predict: the tiger went near the river", "animal", "label"),
        TrainingRow("explain: the tiger went near the river", "Tigers are animals.", "rationale"),
    ]
    assert MODES.get("dss").rows(EXAMPLE, {"llm_rationale": ""}) == rows[:1]


def test_label_then_tokens_puts_the_words_after_the_label_and_reads_the_label_back() -> None:
    mode = MODES.get("label_then_tokens")
    (row,) = mode.rows(EXAMPLE, {"rationale": ["tiger", "river"]})
    assert row == TrainingRow("the tiger went near the river", "animal because: tiger river", "label")
    assert answer_part(row.target, mode.answer_separator) == "animal"
    assert answer_part("animal", mode.answer_separator) == "animal"


REAL_LINES = {
    # First completions of the shipped DSS files (shared/data/dss/<task>/llm/<split>_CoT_0.json), abridged after
    # the invented next example.
    "cqa": ("The answer must be something that has to do with the above problem. Of the above choices, only math "
            "problem has to do with the above problem. So the answer is (d) math problem.\n\nQ: \"The man was so "
            "hungry he could eat a horse.\"  What is this an example of?\nAnswer Choices:\n(a) horse",
            "The answer must be something that has to do with the above problem. Of the above choices, only math "
            "problem has to do with the above problem.", "(d) math problem"),
    "svamp": ("Luke scored 84 points after 2 rounds. So he scored 84 points in 2 rounds. 84 / 2 = 42. The answer is "
              "(84 / 2).\n\nQ: There are 120 students in the school. 1/3 of them are boys. The answer is (120 /",
              "Luke scored 84 points after 2 rounds. So he scored 84 points in 2 rounds. 84 / 2 = 42.", "(84 / 2)"),
    "anli1": ("The premise mentions that Franco Zeffirelli was a senator. Being a senator implies that he had a "
              "political career. So the answer is entailment.\n\nPremise: Almost Sunrise is a 2016 American "
              "documentary film. So the answer is neutral.",
              "The premise mentions that Franco Zeffirelli was a senator. Being a senator implies that he had a "
              "political career.", "entailment"),
    "esnli": ("The to go packages are not necessarily from lunch.\nAnswer: neutral\n\nPremise: Two women are "
              "embracing while holding to go packages.\nHypothesis: Two woman are holding packages.\nReasonings: x",
              "The to go packages are not necessarily from lunch.", "neutral"),
}


@pytest.mark.parametrize("task", sorted(REAL_LINES))
def test_llm_output_parsed_as_dss_parses_it(task: str) -> None:
    text, rationale, answer = REAL_LINES[task]
    assert parse_llm_output(text, task) == (rationale, answer)


def test_unparseable_llm_output_gives_no_rationale() -> None:
    assert parse_llm_output("I do not know.\n\nQ: next", "cqa") == ("", "")
    assert parse_llm_output("x" * 100_000, "svamp") == ("", "")


@pytest.mark.parametrize(("task", "split", "rows"), [("cqa", "train", 9741), ("svamp", "train", 800),
                                                      ("anli1", "valid", 1000), ("esnli", "valid", 9842)])
def test_shipped_llm_rationales_align_with_the_rows(dss_data: Path, task: str, split: str, rows: int) -> None:
    rationales = load_llm_rationales(str(dss_data), task, split)
    assert len(rationales) == rows
    assert sum(bool(r) for r in rationales) / rows > 0.98
    first = json.loads((dss_data / task / "llm" / f"{split}_CoT_0.json").read_text())[0]
    assert rationales[0] == parse_llm_output(first, task)[0]


def test_reselect_takes_the_top_k_of_the_stored_scores() -> None:
    record = {"words": ["a", "tiger", ",", "river", "(a)"], "word_roles": ["q", "q", "q", "q", "template"],
              "word_scores": [0.5, 0.9, 5.0, 0.7, 9.0], "rationale": ["a", "tiger", "river"],
              "rationale_positions": [0, 1, 3]}
    assert reselect(record, 2)["rationale"] == ["tiger", "river"]
    assert reselect(record, 1)["rationale_positions"] == [1]
    assert reselect({**record, "rationale": [], "rationale_positions": [], "rationale_withheld": True}, 2)[
        "rationale"] == []


@pytest.mark.parametrize("family", ["t5", "llama"])
def test_micro_batch_losses_add_up_to_the_full_batch_loss(family: str, t5_dir: Path, llama_dir: Path) -> None:
    loaded = load_model(str(t5_dir if family == "t5" else llama_dir), device="cpu")
    rows = [row for text, words in (("the tiger went near the river", "tiger river"), ("a cat sat", "cat"),
                                    ("the lemon", "lemon"), ("drum and harp", "drum harp"))
            for row in MODES.get("multitask").rows(Example("x", (Segment("input", text),), "animal"),
                                                   {"rationale": words.split()})]

    def loss_of(parts: list[list[TrainingRow]]) -> torch.Tensor:
        encoded = [encode_rows(loaded.tokenizer, part, loaded.is_encoder_decoder, 64, 16) for part in parts]
        totals = group_token_totals(encoded, loaded.is_encoder_decoder) if len(parts) > 1 else None
        total = torch.zeros(())
        for part in encoded:
            total = total + pass_loss(loaded.model, part, torch.device("cpu"), loaded.is_encoder_decoder, 0.3,
                                      totals)[0]
        return total

    whole = loss_of([rows])
    split = loss_of([rows[:2], rows[2:5], rows[5:]])
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-6)
    by_length = forward_batches(loaded.tokenizer, rows, 1, by_length=True, pass_cost=0)
    assert len(by_length) > 1
    torch.testing.assert_close(loss_of(by_length), whole, rtol=1e-5, atol=1e-6)


def test_forward_batches_cut_padding_below_dss_two_batches(t5_dir: Path) -> None:
    loaded = load_model(str(t5_dir), device="cpu")
    words = "tiger river lemon drum harp cat truck yellow small near".split()
    rows = [TrainingRow(" ".join(words[: 1 + i % 10] * (1 + i // 10)), words[i % 10], "label") for i in range(40)]
    rows += [TrainingRow(row.source, " ".join(words[: 1 + i % 7]), "rationale") for i, row in enumerate(rows)]

    def padded(batches: list[list[TrainingRow]]) -> float:
        return sum(len(batch) * (max(len(row.source.split()) for row in batch)
                                 + 1.5 * max(len(row.target.split()) for row in batch)) for batch in batches)

    dss = padded([[row for row in rows if row.group == group] for group in ("label", "rationale")])
    for parts in (1, 3):
        batches = forward_batches(loaded.tokenizer, rows, parts, by_length=True, pass_cost=16)
        assert sorted(map(id, (row for batch in batches for row in batch))) == sorted(map(id, rows))
        assert len(batches) >= parts and max(map(len, batches)) <= -(-len(rows) // parts)
        assert padded(batches) < 0.7 * dss
    # When a pass costs more than any padding, the fewest passes allowed.
    assert len(forward_batches(loaded.tokenizer, rows, 1, by_length=True, pass_cost=1e9)) == 1
    assert len(forward_batches(loaded.tokenizer, rows, 3, by_length=True, pass_cost=1e9)) == 3
    plain = forward_batches(loaded.tokenizer, rows, 3, by_length=False)
    assert len(plain) == 3 and sum(map(len, plain)) == len(rows)
