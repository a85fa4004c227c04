import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokendistill.attribution.words import (
    candidate_mask,
    merge_to_words,
    select_top_k,
    split_words,
    token_word_pairs,
)
from tokendistill.tasks import TEMPLATE, Example, Segment
from tokendistill.tasks.loading import normalized


def example_of(*segments: tuple[str, str]) -> Example:
    return Example("x", tuple(Segment(role, text) for role, text in segments), "y")


def test_split_words_keeps_contractions_numbers_and_unicode() -> None:
    words = split_words(example_of(("input", "Don't pay $3.50 for the café, naïve Zoë!")))
    assert [w.text for w in words] == ["Don't", "pay", "$", "3.50", "for", "the", "café", ",", "naïve", "Zoë", "!"]
    assert all(w.role == "input" for w in words)


def test_split_words_tags_template_roles() -> None:
    words = split_words(example_of(("question", "Why?"), (TEMPLATE, "\n(a) "), ("choice", "rain")))
    assert [(w.text, w.role) for w in words] == [
        ("Why", "question"), ("?", "question"), ("(", TEMPLATE), ("a", TEMPLATE), (")", TEMPLATE), ("rain", "choice"),
    ]


def test_subword_scores_merge_into_words_by_sum_and_max() -> None:
    words = split_words(example_of(("input", "unbelievable cats")))
    # "un" "believ" "able" " cats" "</s>"(special, empty span)
    offsets = np.array([[0, 2], [2, 8], [8, 12], [13, 17], [0, 0]])
    scores = np.array([1.0, 2.0, 3.0, 0.5, 9.0])
    np.testing.assert_allclose(merge_to_words(scores, offsets, words, "sum"), [6.0, 0.5])
    np.testing.assert_allclose(merge_to_words(scores, offsets, words, "max"), [3.0, 0.5])


def test_token_spanning_two_words_counts_for_both() -> None:
    words = split_words(example_of(("input", "(a) rain")))
    offsets = np.array([[0, 2], [2, 3], [4, 8]])  # "(a" crosses a word boundary
    tokens, word_index = token_word_pairs(offsets, words)
    assert list(zip(tokens.tolist(), word_index.tolist())) == [(0, 0), (0, 1), (1, 2), (2, 3)]


def test_words_cut_off_by_truncation_get_no_score() -> None:
    words = split_words(example_of(("input", "one two three")))
    scores = merge_to_words(np.array([1.0, 2.0]), np.array([[0, 3], [4, 7]]), words)
    assert scores[:2].tolist() == [1.0, 2.0] and np.isnan(scores[2])
    assert select_top_k(scores, np.ones(3, bool), 3).tolist() == [0, 1]


def test_top_k_keeps_input_order_and_breaks_ties_by_position() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.5])
    assert select_top_k(scores, np.ones(5, bool), 3).tolist() == [1, 2, 3]
    assert select_top_k(scores, np.array([1, 0, 1, 1, 1], bool), 2).tolist() == [2, 3]


def test_top_k_as_a_fraction_of_the_candidates() -> None:
    scores = np.arange(10, dtype=float)
    assert select_top_k(scores, np.ones(10, bool), 0.3).tolist() == [7, 8, 9]
    with pytest.raises(ValueError):
        select_top_k(scores, np.ones(10, bool), 2.5)


def test_candidates_exclude_template_punctuation_and_optionally_stopwords() -> None:
    words = split_words(example_of(("input", "the cat ,"), (TEMPLATE, " Answer")))
    assert candidate_mask(words).tolist() == [True, True, False, False]
    assert candidate_mask(words, drop_stopwords=True).tolist() == [False, True, False, False]


@given(st.text(max_size=200))
def test_word_spans_always_point_at_their_text(text: str) -> None:
    example = example_of(("input", text))
    for word in split_words(example):
        assert example.input[word.start : word.end] == word.text
        assert word.text.strip() == word.text and word.text


# ----- words in every script: combining marks stay with their letter; NFC and NFD give the same words ------
SCRIPTS = {
    # base letters, then the combining marks (vowel signs, viramas, tone marks, accents) that follow them
    "devanagari": ([chr(c) for c in range(0x0915, 0x093A)], [chr(c) for c in (*range(0x093E, 0x094E), 0x0901, 0x0902)]),
    "tamil": ([chr(c) for c in range(0x0B95, 0x0BBA) if unicodedata.category(chr(c)) == "Lo"],
              [chr(c) for c in range(0x0BBE, 0x0BCE) if unicodedata.category(chr(c)).startswith("M")]),
    "thai": ([chr(c) for c in range(0x0E01, 0x0E2F)], [chr(c) for c in (0x0E31, *range(0x0E34, 0x0E3B), *range(0x0E47, 0x0E4F))]),
    "latin": (list("aeiouncyz"), [chr(c) for c in (0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x0327, 0x030C)]),
    "hebrew": ([chr(c) for c in range(0x05D0, 0x05EB)], [chr(c) for c in range(0x05B0, 0x05BD)]),
}


@st.composite
def script_words(draw: st.DrawFn) -> list[str]:
    bases, marks = SCRIPTS[draw(st.sampled_from(sorted(SCRIPTS)))]
    syllable = st.tuples(st.sampled_from(bases), st.lists(st.sampled_from(marks), max_size=2)).map(
        lambda pair: pair[0] + "".join(pair[1]))
    return draw(st.lists(st.lists(syllable, min_size=1, max_size=4).map("".join), min_size=1, max_size=6))


def _example(text: str) -> Example:
    return normalized(Example("x", (Segment("input", text),), "y"))


@given(script_words())
def test_words_keep_their_combining_marks_in_every_script(words: list[str]) -> None:
    example = _example(" ".join(words))
    found = [word.text for word in split_words(example)]
    assert found == [unicodedata.normalize("NFC", word) for word in words]
    for word in split_words(example):
        assert example.input[word.start : word.end] == word.text
        assert not unicodedata.category(word.text[0]).startswith("M")  # never a fragment starting mid-letter


@given(script_words())
def test_nfc_and_nfd_inputs_give_the_same_words(words: list[str]) -> None:
    text = " ".join(words)
    composed = [w.text for w in split_words(_example(unicodedata.normalize("NFC", text)))]
    decomposed = [w.text for w in split_words(_example(unicodedata.normalize("NFD", text)))]
    assert composed == decomposed


def test_known_words_of_scripts_with_marks() -> None:
    for text, expected in [("हिन्दी भाषा", ["हिन्दी", "भाषा"]), ("தமிழ் மொழி", ["தமிழ்", "மொழி"]),
                           (unicodedata.normalize("NFD", "café naïve."), ["café", "naïve", "."])]:
        assert [w.text for w in split_words(_example(text))] == expected


# Emoji that are one character to a reader and several code points: joiner sequences, skin tones, flags, keycaps,
# presentation selectors, tag sequences (a subdivision flag).
EMOJI = ["👨\u200d👩\u200d👧", "👩\u200d💻", "👍🏽", "🧑🏿\u200d🚀", "🇩🇪", "🇯🇵", "❤️", "1️⃣",
         "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "🏳️\u200d🌈"]
LONE = ["\u200d", "\u200c", "\ufe0f", "\U0001F3FD", "\u0301"]


@given(st.lists(st.one_of(st.sampled_from(EMOJI), st.sampled_from(["word", "don't", "3.5", "!", "हिन्दी"])),
                min_size=1, max_size=8))
def test_emoji_stay_whole_words(pieces: list[str]) -> None:
    text = " ".join(pieces)
    found = [w.text for w in split_words(_example(text))]
    for piece in pieces:
        if piece in EMOJI:
            assert unicodedata.normalize("NFC", piece) in found  # never cut apart
    assert all(not regex_lone(word) for word in found)


def regex_lone(word: str) -> bool:
    return all(character in LONE or unicodedata.category(character) in ("Mn", "Me", "Cf") for character in word)


@given(st.lists(st.one_of(st.sampled_from(LONE), st.sampled_from(["a", " ", "b", "!", "👍", "\n"])), max_size=12))
def test_no_joiner_selector_or_modifier_is_a_word_by_itself(pieces: list[str]) -> None:
    example = _example("".join(pieces))
    for word in split_words(example):
        assert not regex_lone(word.text), word
        assert example.input[word.start : word.end] == word.text
