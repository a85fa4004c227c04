"""random_matched: the teacher's choice with other words, from the same segments, in the same counts, at every k."""

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tokendistill.attribution.controls import matched_random_scores
from tokendistill.attribution.methods import METHODS
from tokendistill.selection import select_top_k

# e-SNLI-shaped: premise words, then hypothesis words; "." is not a candidate.
WORDS = ["A", "man", "plays", "a", "guitar", "on", "stage", ".", "A", "person", "makes", "music", "."]
ROLES = ["premise"] * 8 + ["hypothesis"] * 5
CANDIDATES = np.array([word != "." for word in WORDS])
TEACHER = np.array([0.1, 0.9, 0.7, 0.05, 0.8, 0.02, 0.3, 0.5, 0.01, 0.6, 0.2, 0.95, 0.4])


def roles_of(chosen: np.ndarray) -> Counter:
    return Counter(ROLES[i] for i in chosen)


def test_matched_words_fall_in_the_teachers_segments_in_its_counts_at_every_k() -> None:
    matched = matched_random_scores(TEACHER, ROLES, CANDIDATES, "esnli-1")
    for k in range(1, int(CANDIDATES.sum()) + 1):
        teacher_pick, control_pick = select_top_k(TEACHER, CANDIDATES, k), select_top_k(matched, CANDIDATES, k)
        assert roles_of(control_pick) == roles_of(teacher_pick)
        assert all(CANDIDATES[i] for i in control_pick)
    # The teacher's top 3 are "music" (hypothesis), "man", "guitar" (premise): the control keeps 1 + 2.
    assert roles_of(select_top_k(matched, CANDIDATES, 3)) == Counter({"premise": 2, "hypothesis": 1})


def test_matched_draw_is_fixed_by_the_example_and_differs_between_examples() -> None:
    first = matched_random_scores(TEACHER, ROLES, CANDIDATES, "esnli-1")
    assert np.array_equal(first, matched_random_scores(TEACHER, ROLES, CANDIDATES, "esnli-1"))
    picks = {tuple(select_top_k(matched_random_scores(TEACHER, ROLES, CANDIDATES, f"esnli-{i}"), CANDIDATES, 3))
             for i in range(20)}
    assert len(picks) > 5  # other words, not the teacher's again


def test_unscored_and_filtered_words_are_never_drawn() -> None:
    scores = TEACHER.copy()
    scores[4] = np.nan  # a word past the teacher's truncation
    matched = matched_random_scores(scores, ROLES, CANDIDATES, "x")
    assert np.isnan(matched[4])
    chosen = select_top_k(matched, CANDIDATES, 11)
    assert 4 not in chosen and 7 not in chosen and 12 not in chosen


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["premise", "hypothesis", "choices"]), st.floats(0, 1), st.booleans()),
                min_size=1, max_size=30), st.integers(1, 30), st.text(max_size=8))
def test_any_input_keeps_the_segment_counts(words, k, example_id) -> None:
    roles = [role for role, _, _ in words]
    scores = np.array([score for _, score, _ in words])
    candidates = np.array([flag for _, _, flag in words])
    matched = matched_random_scores(scores, roles, candidates, example_id)
    teacher_pick, control_pick = select_top_k(scores, candidates, k), select_top_k(matched, candidates, k)
    assert Counter(roles[i] for i in control_pick) == Counter(roles[i] for i in teacher_pick)


def test_random_matched_is_a_method_with_a_word_stage() -> None:
    assert getattr(METHODS.get("random_matched"), "word_stage", None) is matched_random_scores


def test_extract_with_random_matched_keeps_each_examples_segment_counts(tmp_path, llama_dir) -> None:
    import json

    from tokendistill.cli import main

    records = {}
    for method in ("saliency", "random_matched"):
        output = tmp_path / method
        assert main(["extract", "--task", "keywords", "--device", "cpu", "--limit", "8", "--teacher",
                     str(llama_dir), "--output", str(output), "--method", method, "--top-k", "3",
                     "--target", "gold"]) == 0
        lines = (output / "records.jsonl").read_text().splitlines()
        records[method] = {r["id"]: r for r in map(json.loads, lines)}
    assert records["saliency"].keys() == records["random_matched"].keys()
    differ = 0
    for identifier, teacher in records["saliency"].items():
        control = records["random_matched"][identifier]
        assert Counter(teacher["word_roles"][i] for i in teacher["rationale_positions"]) == Counter(
            control["word_roles"][i] for i in control["rationale_positions"])
        differ += teacher["rationale_positions"] != control["rationale_positions"]
    assert differ > 0
