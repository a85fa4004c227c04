"""The order examples are drawn in: a seeded permutation per epoch, which a resumed run fast-forwards."""

from itertools import islice

from tokendistill.training.rows import example_order


def test_every_epoch_is_a_permutation_and_the_seed_fixes_it() -> None:
    drawn = list(islice(example_order(5, seed=3), 15))
    assert [sorted(drawn[i:i + 5]) for i in (0, 5, 10)] == [list(range(5))] * 3
    assert drawn[:5] != drawn[5:10] or drawn[5:10] != drawn[10:]  # epochs are reshuffled
    assert list(islice(example_order(5, seed=3), 15)) == drawn
    assert list(islice(example_order(5, seed=4), 15)) != drawn


def test_a_resumed_run_draws_what_the_uninterrupted_run_would_have_drawn_next() -> None:
    whole = list(islice(example_order(7, seed=0), 40))
    for skip in (0, 3, 7, 12, 21):
        assert list(islice(example_order(7, seed=0, skip=skip), 40 - skip)) == whole[skip:]
