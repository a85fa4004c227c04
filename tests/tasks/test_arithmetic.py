import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokendistill.tasks.arithmetic import evaluate_arithmetic, same_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("( 10.0 * 45.0 )", 450.0),
        ("( 10.0 - ( 6.0 + 3.0 ) )", 1.0),
        ("-3 + 4 * 2", 5.0),
        ("(1 + 2) / 4", 0.75),
        (".5 + 1.", 1.5),
    ],
)
def test_evaluates_arithmetic(text: str, value: float) -> None:
    assert evaluate_arithmetic(text) == pytest.approx(value)


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "2 ** 3", "1 +", "(1 + 2", "1 / 0", "x + 1", "", "1 2", "9" * 600, "(" * 200 + "1" + ")" * 200],
)
def test_rejects_anything_but_arithmetic(text: str) -> None:
    with pytest.raises(ValueError):
        evaluate_arithmetic(text)


def test_same_value_compares_numbers_not_strings() -> None:
    assert same_value("( 45.0 * 10.0 )", "( 10.0 * 45.0 )")
    assert not same_value("( 45.0 + 10.0 )", "( 10.0 * 45.0 )")
    assert not same_value("import os", "( 1.0 )")


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    assert same_value(text, "( 1.0 + 1.0 )") in (True, False)
