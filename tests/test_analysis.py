"""Every statistic of the analysis on hand-built records whose answers are worked out by hand."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokendistill.analysis import (
    AnalyzeConfig,
    agreement,
    analyze,
    answer_words,
    chance_all,
    chance_any,
    frequent_words,
    normalize_word,
    overlap_shares,
    positions,
    spearman,
    view_record,
)
from tokendistill.rationales import RationaleStore


def record(example_id: str, words: list[str], scores: list[float], chosen: list[int], target: str,
           teacher_answer: str = "", teacher_correct: bool = False, roles: list[str] | None = None) -> dict:
    return {
        "id": example_id, "input": " ".join(words), "target": target, "teacher_answer": teacher_answer,
        "teacher_correct": teacher_correct, "words": words, "word_roles": roles or ["question"] * len(words),
        "word_scores": scores, "rationale_positions": chosen, "rationale": [words[i] for i in chosen],
        "word_spans": [], "truncated": False,
    }


# Hit, no answer in the input, miss (worked out in the comments of each test).
RECORDS = [
    record("hit", ["the", "fruit", "apple", "sky"], [0.1, 0.5, 0.9, 0.2], [2], "apple", "apple", True),
    record("absent", ["a", "big", "sky"], [0.3, 0.2, 0.1], [0], "apple", "sky", False),
    record("miss", ["red", "apple", "tree", "sky"], [0.9, 0.1, 0.5, 0.2], [0], "apple", "tree", False),
]


def views() -> list:
    return [view_record(r) for r in RECORDS]


def test_chance_any_is_the_hypergeometric_complement() -> None:
    assert chance_any(5, 1, 2) == pytest.approx(1 - 6 / 10)  # 1 - C(4,2)/C(5,2)
    assert chance_any(5, 0, 2) == 0 and chance_any(3, 1, 5) == 1


@given(pool=st.integers(1, 7), sizes=st.lists(st.integers(0, 2), min_size=1, max_size=3), k=st.integers(1, 7))
def test_chance_baselines_match_enumeration(pool: int, sizes: list[int], k: int) -> None:
    if sum(sizes) > pool:
        return
    labels, start = [], 0
    for group, size in enumerate(sizes):
        labels += [group] * size
        start += size
    labels += [-1] * (pool - start)
    draws = list(itertools.combinations(range(pool), min(k, pool)))
    covered_any = sum(any(labels[i] >= 0 for i in d) for d in draws) / len(draws)
    covered_all = sum(all(any(labels[i] == g for i in d) for g in range(len(sizes))) for d in draws) / len(draws)
    assert chance_any(pool, sum(sizes), k) == pytest.approx(covered_any)
    assert chance_all(pool, sizes, k) == pytest.approx(covered_all if all(sizes) else 0.0)


def test_overlap_shares_against_both_baselines() -> None:
    shares = overlap_shares(views(), "gold")
    assert shares["examples"] == 3 and shares["answer_in_input"] == 2  # "absent" has no apple in its input
    assert shares["any"]["rationale"] == pytest.approx(0.5)  # hit and miss
    assert shares["any"]["random_words"] == pytest.approx((1 / 4 + 1 / 4) / 2)
    # "the" is a stopword: 1 of 3 content words in "hit", 1 of 4 in "miss".
    assert shares["any"]["random_content_words"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert shares["whole"]["rationale"] == pytest.approx(0.5)
    assert shares["any"]["random_same_parts"] == pytest.approx(0.25)  # one of 4 candidates, drawn once, twice


def test_same_parts_baseline_draws_from_the_parts_the_rationale_used() -> None:
    # Two words picked from the choices and one from the question; the answer is one of 3 choice words.
    view = view_record(record("x", ["why", "go", "there", "park", "zoo", "mall"], [1, 1, 1, 1, 1, 1], [0, 3, 4],
                              "mall", roles=["question"] * 3 + ["choice"] * 3))
    shares = overlap_shares([view], "gold")
    assert shares["any"]["rationale"] == 0.0
    assert shares["any"]["random_same_parts"] == pytest.approx(1 - 1 / 3)  # 1 - C(2,2)/C(3,2)
    assert "random_same_parts" not in shares["whole"]


def test_overlap_with_the_teachers_answer_and_by_k() -> None:
    teacher = overlap_shares(views(), "teacher_answer")
    # hit: teacher said apple, picked apple; absent: said sky, picked "a"; miss: said tree, picked red.
    assert teacher["answer_in_input"] == 3 and teacher["any"]["rationale"] == pytest.approx(1 / 3)
    at_two = overlap_shares(views(), "gold", k=2)
    # Top 2 by score: hit -> apple, fruit (hit); miss -> red, tree (miss).
    assert at_two["any"]["rationale"] == pytest.approx(0.5)
    assert at_two["any"]["random_words"] == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) in both


def test_subsets_by_teacher_correctness_in_analyze(tmp_path: Path) -> None:
    store = RationaleStore.open(tmp_path / "r", {"task": "cqa", "split": "train", "method": "saliency", "top_k": 1})
    store.append(RECORDS)
    store.finish({"chance_accuracy": 0.2})
    analysis = analyze(AnalyzeConfig(rationales=[str(tmp_path / "r")], max_k=3))
    (result,) = analysis["sets"]
    gold = result["answer_overlap"]["gold"]
    assert gold["teacher_right"]["any"]["rationale"] == 1.0 and gold["teacher_right"]["answer_in_input"] == 1
    assert gold["teacher_wrong"]["any"]["rationale"] == 0.0 and gold["teacher_wrong"]["answer_in_input"] == 1
    assert result["teacher_accuracy"] == pytest.approx(1 / 3)
    assert [row["k"] for row in result["by_k"]] == [1, 2, 3]
    written = json.loads((tmp_path / "r" / "analysis" / "analysis.json").read_text())
    assert written["sets"][0]["examples"] == 3
    table = (tmp_path / "r" / "analysis" / "analysis.md").read_text()
    assert "| cqa | saliency | 3 | all | 2 | 50.0% | 25.0% | 29.2% | 25.0% |" in table


def test_frequent_words_and_lift() -> None:
    rows = {row["word"]: row for row in frequent_words(views(), 10)}
    assert set(rows) == {"apple", "a", "red"}
    # apple: 1 of 3 picks; 2 of the 11 candidate words.
    assert rows["apple"]["share_of_rationale_words"] == pytest.approx(1 / 3)
    assert rows["apple"]["lift"] == pytest.approx((1 / 3) / (2 / 11))


def test_positions_by_role() -> None:
    view = view_record(record("x", ["why", "cats", "dogs", "(a)"], [0.1, 0.2, 0.9, 1.0], [2], "dogs",
                              roles=["question", "choice", "choice", "template"]))
    shares = positions([view])
    assert shares["choice"] == {"rationale_share": 1.0, "candidate_share": pytest.approx(2 / 3)}
    assert shares["question"]["rationale_share"] == 0.0
    assert "template" not in shares


def test_agreement_between_methods() -> None:
    a = {"x": view_record(record("x", ["w", "x", "y", "z"], [1, 2, 3, 4], [2, 3], "z"))}
    b = {"x": view_record(record("x", ["w", "x", "y", "z"], [4, 3, 2, 1], [0, 3], "z"))}
    result = agreement(a, b)
    assert result["examples"] == 1 and result["top_k_overlap"] == 0.5
    assert result["spearman"] == pytest.approx(-1.0)


def test_spearman_handles_ties_and_constants() -> None:
    assert spearman(np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 2.0, 2.0, 3.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 1.0]), np.array([1.0, 2.0])) is None


def test_answer_words_and_numbers() -> None:
    assert answer_words("the wooded area") == {"wooded", "area"}
    assert answer_words("( 10.0 * 45.0 )") == {"10", "45"}
    assert answer_words("it") == {"it"}
    assert normalize_word("3.50") == "3.5" and normalize_word("Apple") == "apple"
    assert normalize_word("nan") == "nan" and not math.isnan(len(normalize_word("inf")))


def test_unscored_and_template_words_are_no_candidates() -> None:
    view = view_record(record("x", ["a", "b", ",", "c"], [1.0, None, 2.0, 3.0], [3], "c",
                              roles=["q", "q", "q", "template"]))
    assert view.candidates.tolist() == [True, False, False, False]
