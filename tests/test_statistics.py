"""Seed-level inference: random effects over seeds, against hand-worked cases and a simulation of whole grids."""

import math

import numpy as np
import pytest

from tokendistill.statistics import (
    ESTABLISHED,
    EXCLUDED,
    INCONCLUSIVE,
    Z_95,
    chi2_quantile,
    claim,
    generalized_q,
    holm,
    random_effects,
    seeds_needed,
    t_two_sided_p,
    tau_interval,
)


def test_random_effects_on_a_hand_worked_pair_of_seeds() -> None:
    # d = 0.1, 0.3, each with row variance 0.01: w = 100 each, fixed mean 0.2, Q = 2, df 1, C = 200 - 20000/200 = 100,
    # tau² = (2 - 1) / 100 = 0.01; weights 1 / 0.02 = 50; mean 0.2; HKSJ error sqrt((50·0.01 + 50·0.01) / (1·100)) = 0.1;
    # half-width t_{0.975,1} x 0.1 = 1.2706; I² = (2 - 1) / 2.
    level = random_effects([(0.1, 0.01), (0.3, 0.01)])
    assert level.mean == pytest.approx(0.2) and level.tau == pytest.approx(0.1) and level.q == pytest.approx(2.0)
    assert level.i2 == pytest.approx(0.5) and level.low == pytest.approx(0.2 - 1.2706) and level.seeds == 2
    assert level.p == pytest.approx(t_two_sided_p(2.0, 1)) and level.p == pytest.approx(1 - 2 * math.atan(2) / math.pi)


def test_seeds_that_agree_within_row_noise_have_no_between_seed_variance() -> None:
    # Q = 100 (0.01² + 0 + 0.01²) = 0.02 < df = 2: tau² is 0 and the weights are the rows' own.
    level = random_effects([(0.04, 0.01), (0.05, 0.01), (0.06, 0.01)])
    assert level.tau == 0.0 and level.i2 == 0.0 and level.mean == pytest.approx(0.05)
    # HKSJ: sqrt(100 (0.01² + 0 + 0.01²) / (2 x 300)) = sqrt(0.02 / 600); half-width t_{0.975,2} = 4.303 times it.
    assert level.low == pytest.approx(0.05 - 4.303 * math.sqrt(0.02 / 600), rel=1e-3)


def test_the_decisive_grids_words_comparison_is_wide_at_the_seed_level() -> None:
    # The paper layout's words vs random words, by seed +4.9, -5.2, +0.3 (rows' sd about 1.4 points each).
    level = random_effects([(0.049, 0.0002), (-0.052, 0.0002), (0.003, 0.0002)], effect=0.02)
    assert level.low < -0.10 and level.high > 0.10 and level.i2 > 0.9
    assert claim(level, 0.02) == INCONCLUSIVE and level.seeds_needed > 30


def test_t_p_values_and_holm() -> None:
    assert t_two_sided_p(2.776, 4) == pytest.approx(0.05, abs=2e-4)
    assert t_two_sided_p(1.0, 10) == pytest.approx(0.3409, abs=1e-4)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_claims() -> None:
    level = random_effects([(0.05, 0.0001), (0.06, 0.0001), (0.055, 0.0001)])
    assert claim(level, 0.02) == ESTABLISHED and claim(level, 0.02, p=0.2) != ESTABLISHED
    level = random_effects([(0.001, 0.0001), (-0.001, 0.0001), (0.0, 0.0001), (0.002, 0.0001)])
    assert claim(level, 0.02) == EXCLUDED and claim(level, None) is None


def test_seeds_needed_grows_with_the_spread() -> None:
    assert seeds_needed(0.0001, 0.02) < seeds_needed(0.001, 0.02) < seeds_needed(0.01, 0.02)
    # One seed's sd 0.02 = the effect: (t_.975 + t_.8) <= sqrt(S); 10 seeds: 2.262 + 0.883 = 3.145 <= 3.162; 9: 3.195 > 3.
    assert seeds_needed(0.0004, 0.02) == 10


def simulated_coverages(grids: int = 1000, seeds: int = 5, rows: int = 2000, effect: float = 0.02,
                        between: float = 0.03, discordant: float = 0.2) -> tuple[float, float]:
    """Whole grids drawn from a known method effect: each seed's true difference is effect + N(0, between²); each
    row of a seed is right only here, only there, or alike, with that difference. Returns how often the seed-level
    interval and the rows' interval (pooled over seeds, as the table's) cover the method's effect."""
    generator = np.random.default_rng(0)
    seed_covers = row_covers = 0
    for _ in range(grids):
        truths = effect + between * generator.standard_normal(seeds)
        draws = generator.random((seeds, rows))
        here_only = (discordant + truths[:, None]) / 2
        per_row = np.where(draws < here_only, 1.0, np.where(draws < discordant, -1.0, 0.0))
        level = random_effects([(float(r.mean()), float(r.var(ddof=1) / rows)) for r in per_row])
        seed_covers += level.low <= effect <= level.high
        pooled = per_row.mean(axis=0)
        half = Z_95 * pooled.std(ddof=1) / math.sqrt(rows)
        row_covers += pooled.mean() - half <= effect <= pooled.mean() + half
    return seed_covers / grids, row_covers / grids


@pytest.mark.slow
def test_the_seed_level_interval_covers_the_method_effect_and_the_rows_interval_does_not() -> None:
    seed_level, rows_level = simulated_coverages()
    print(f"coverage of the method's effect over 1,000 grids: seed level {seed_level:.3f}, rows {rows_level:.3f}")
    assert 0.93 <= seed_level <= 0.97
    assert rows_level < 0.6


def test_chi_square_quantiles() -> None:
    # On 2 degrees of freedom the distribution function is 1 - exp(-x / 2): the quantile is -2 ln(1 - p).
    for probability in (0.025, 0.5, 0.975):
        assert chi2_quantile(probability, 2) == pytest.approx(-2 * math.log(1 - probability), rel=1e-9)
    # Textbook values on 1, 4 and 30 degrees of freedom.
    assert chi2_quantile(0.975, 1) == pytest.approx(5.0239, abs=1e-4)
    assert chi2_quantile(0.025, 4) == pytest.approx(0.4844, abs=1e-4)
    assert chi2_quantile(0.975, 30) == pytest.approx(46.979, abs=1e-3)


def test_the_between_seed_sd_interval_is_the_q_profile() -> None:
    # Three seeds, rows' variance 0.01 each: the interval's ends are where the generalized Q meets the 97.5% and
    # 2.5% quantiles on 2 degrees of freedom (7.378 and 0.0506), and the point estimate lies between them.
    per_seed = [(0.0, 0.01), (0.3, 0.01), (0.6, 0.01)]
    low, high = tau_interval(per_seed)
    assert generalized_q(per_seed, low * low) == pytest.approx(chi2_quantile(0.975, 2), rel=1e-6)
    assert generalized_q(per_seed, high * high) == pytest.approx(chi2_quantile(0.025, 2), rel=1e-6)
    level = random_effects(per_seed)
    assert low < level.tau < high and (level.tau_low, level.tau_high) == (low, high)
    # By hand: equal variances make Q(tau²) = sum (d - mean)² / (0.01 + tau²) = 0.18 / (0.01 + tau²).
    assert high == pytest.approx(math.sqrt(0.18 / (-2 * math.log(0.975)) - 0.01), rel=1e-6)
    # Seeds that agree within row noise: Q(0) under the 97.5% quantile, so the interval starts at 0.
    assert tau_interval([(0.04, 0.01), (0.05, 0.01), (0.06, 0.01)])[0] == 0.0


def test_the_between_seed_sd_interval_covers_the_true_spread() -> None:
    generator = np.random.default_rng(7)
    covered = 0
    for _ in range(1000):
        variances = generator.uniform(0.0001, 0.0004, size=4)
        differences = 0.02 + generator.normal(0, 0.02, size=4) + generator.normal(0, np.sqrt(variances))
        low, high = tau_interval(list(zip(differences.tolist(), variances.tolist())))
        covered += low <= 0.02 <= high
    print(f"the Q-profile interval covered the true between-seed sd in {covered / 10:.1f}% of 1,000 grids of 4 seeds")
    assert 930 <= covered <= 970
