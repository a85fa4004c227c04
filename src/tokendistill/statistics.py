"""The statistics of a results table: paired differences over test rows, and the same differences treated at the
level the claim is made, where each training seed is one draw of the method.

Two levels, because they answer two questions. Over test rows (``paired_difference``) the interval says how sure we
are about *these trained students* on these rows. Over seeds (``random_effects``) it says how sure we are about the
*method*: each seed's difference is one observation whose sampling error (its rows) and between-seed spread (another
seed trains another student) both count. A claim about a method rests on the second.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95%
Z_POWER_80 = 0.8416212335729143  # one-sided 80% power
# Student's t by degrees of freedom (1-30; beyond, the normal's): two-sided 95% and one-sided 80% quantiles. Tables,
# since no dependency of ours has the quantile function and these are the textbook values.
T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
T_80 = (1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870, 0.868, 0.866,
        0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856, 0.855, 0.855, 0.854, 0.854)


def t_95(df: int) -> float:
    return T_95[df - 1] if df <= len(T_95) else Z_95


def t_80(df: int) -> float:
    return T_80[df - 1] if df <= len(T_80) else Z_POWER_80


# ----- over test rows ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedDifference:
    """Accuracy here minus accuracy there on the same test rows and seeds, pooled over the seeds.

    ``low``/``high``: the 95% interval of the mean difference (normal approximation over test rows, each row's
    difference averaged over the paired seeds; with one seed it is the Wald interval of McNemar's paired
    proportions). ``detectable``: the smallest difference this design detects at 80% power (two-sided 5%),
    (z_0.975 + z_0.8) times the standard error. Conditional on the trained students: it covers the sampling of
    test rows, not the seeds' spread (``random_effects`` does).
    """

    mean: float
    low: float
    high: float
    detectable: float
    rows: int
    seeds: int
    only_here: int
    only_there: int


def paired_difference(here: dict[int, frozenset[str]], there: dict[int, frozenset[str]],
                      ids: Iterable[str]) -> PairedDifference | None:
    """``here``/``there``: per seed, the ids of the test rows answered right; ``ids``: every test row."""
    seeds = sorted(set(here) & set(there))
    rows = sorted(set(ids))
    if not seeds or not rows:
        return None
    per_row = [statistics.fmean((row in here[s]) - (row in there[s]) for s in seeds) for row in rows]
    mean = statistics.fmean(per_row)
    error = statistics.stdev(per_row) / math.sqrt(len(rows)) if len(rows) > 1 else 0.0
    return PairedDifference(
        mean=mean, low=mean - Z_95 * error, high=mean + Z_95 * error, detectable=(Z_95 + Z_POWER_80) * error,
        rows=len(rows), seeds=len(seeds),
        only_here=sum(len(here[s] - there[s]) for s in seeds), only_there=sum(len(there[s] - here[s]) for s in seeds),
    )


def seed_variances(here: dict[int, frozenset[str]], there: dict[int, frozenset[str]],
                   ids: Iterable[str]) -> dict[int, tuple[float, float]]:
    """Per seed: the paired difference on the rows and its sampling variance (the variance of the per-row
    differences / rows: McNemar's)."""
    rows = sorted(set(ids))
    result = {}
    for seed in sorted(set(here) & set(there)):
        per_row = [(row in here[seed]) - (row in there[seed]) for row in rows]
        variance = statistics.variance(per_row) / len(rows) if len(rows) > 1 else 0.0
        result[seed] = (statistics.fmean(per_row), variance)
    return result


def seed_interval(differences: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t-interval of the mean of per-seed differences (each seed one observation). None under two."""
    if len(differences) < 2:
        return None
    mean = statistics.fmean(differences)
    half = t_95(len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean - half, mean + half


# ----- over seeds -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedLevel:
    """The per-seed differences combined as random effects (DerSimonian-Laird's between-seed variance), with the
    Hartung-Knapp-Sidik-Jonkman interval: a t interval on seeds - 1 degrees of freedom around the weighted mean,
    whose coverage stays near 95% with few seeds where the plain DL interval is far too narrow.

    ``tau``: the between-seed standard deviation of the difference; with 2-5 seeds it is known only roughly, which
    the t quantile on few degrees of freedom carries into the interval, and ``tau_low``-``tau_high`` says how
    roughly: its 95% Q-profile interval (Viechtbauer 2007). ``q`` and
    ``i2``: Cochran's heterogeneity statistic and the share of the seeds' spread that is beyond row noise.
    ``p``: two-sided, of the t statistic. ``seeds_needed``: how many seeds would detect ``effect`` at 80% power
    (two-sided 5%), from the observed spread of one seed's difference (tau² + its rows' variance)."""

    mean: float
    low: float
    high: float
    tau: float
    tau_low: float
    tau_high: float
    q: float
    i2: float
    p: float
    seeds: int
    seeds_needed: int | None


def random_effects(per_seed: Sequence[tuple[float, float]], effect: float | None = None) -> SeedLevel | None:
    """``per_seed``: (difference, its sampling variance) per seed. None under two seeds (no spread to see)."""
    if len(per_seed) < 2:
        return None
    differences = [d for d, _ in per_seed]
    variances = [max(v, 1e-12) for _, v in per_seed]  # a seed whose models agree on every row: no row noise
    weights = [1 / v for v in variances]
    fixed = sum(w * d for w, d in zip(weights, differences)) / sum(weights)
    q = sum(w * (d - fixed) ** 2 for w, d in zip(weights, differences))
    df = len(per_seed) - 1
    scale = sum(weights) - sum(w * w for w in weights) / sum(weights)
    tau2 = max(0.0, (q - df) / scale) if scale > 0 else 0.0
    random_weights = [1 / (v + tau2) for v in variances]
    mean = sum(w * d for w, d in zip(random_weights, differences)) / sum(random_weights)
    error = math.sqrt(sum(w * (d - mean) ** 2 for w, d in zip(random_weights, differences))
                      / (df * sum(random_weights)))
    half = t_95(df) * error
    statistic = abs(mean) / error if error > 0 else math.inf
    tau_low, tau_high = tau_interval(per_seed)
    return SeedLevel(mean=mean, low=mean - half, high=mean + half, tau=math.sqrt(tau2), tau_low=tau_low,
                     tau_high=tau_high, q=q,
                     i2=max(0.0, (q - df) / q) if q > 0 else 0.0, p=t_two_sided_p(statistic, df),
                     seeds=len(per_seed),
                     seeds_needed=seeds_needed(tau2 + statistics.fmean(variances), effect) if effect else None)


def generalized_q(per_seed: Sequence[tuple[float, float]], tau2: float) -> float:
    """Cochran's Q with the weights 1 / (v + tau²): chi-square on seeds - 1 degrees of freedom at the true tau²."""
    weights = [1 / (max(v, 1e-12) + tau2) for _, v in per_seed]
    mean = sum(w * d for w, (d, _) in zip(weights, per_seed)) / sum(weights)
    return sum(w * (d - mean) ** 2 for w, (d, _) in zip(weights, per_seed))


def tau_interval(per_seed: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The 95% Q-profile interval of the between-seed sd: the tau² where the generalized Q meets the 97.5% and 2.5%
    chi-square quantiles (Q falls as tau² grows, so each end is one root, found by bisection)."""
    df = len(per_seed) - 1
    largest = max(d for d, _ in per_seed) - min(d for d, _ in per_seed)
    ceiling = max(largest * largest, max(v for _, v in per_seed), 1e-12) * 1e4

    def root(target: float) -> float:
        if generalized_q(per_seed, 0.0) <= target:
            return 0.0
        low, high = 0.0, ceiling
        for _ in range(200):
            middle = (low + high) / 2
            low, high = (middle, high) if generalized_q(per_seed, middle) > target else (low, middle)
        return math.sqrt(high)

    return root(chi2_quantile(0.975, df)), root(chi2_quantile(0.025, df))


def chi2_quantile(probability: float, df: int) -> float:
    """The chi-square quantile on ``df`` degrees of freedom, by bisection on its distribution function."""
    low, high = 0.0, max(10.0, 10.0 * df)
    while _regularized_gamma(df / 2, high / 2) < probability:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if _regularized_gamma(df / 2, middle / 2) < probability else (low, middle)
    return (low + high) / 2


def _regularized_gamma(a: float, x: float) -> float:
    """P(a, x), the lower regularized incomplete gamma function (the chi-square's distribution function at
    P(df / 2, x / 2)): its series under a + 1, else its continued fraction (Numerical Recipes' gser and gcf), as no
    dependency of ours has it."""
    if x <= 0:
        return 0.0
    front = math.exp(-x + a * math.log(x) - math.lgamma(a))
    if x < a + 1:
        term = total = 1 / a
        for n in range(1, 1000):
            term *= x / (a + n)
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return front * total
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    result = d
    for n in range(1, 1000):
        an = -n * (n - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        result *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return 1 - front * result


def seeds_needed(one_seed_variance: float, effect: float, most: int = 1000) -> int | None:
    """The fewest seeds (at least 2) whose t test of the mean difference detects ``effect`` at 80% power."""
    for seeds in range(2, most + 1):
        if (t_95(seeds - 1) + t_80(seeds - 1)) * math.sqrt(one_seed_variance / seeds) <= effect:
            return seeds
    return None


def t_two_sided_p(statistic: float, df: int) -> float:
    """P(|T| >= statistic) for Student's t on ``df`` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2)."""
    if math.isinf(statistic):
        return 0.0
    return _regularized_beta(df / (df + statistic * statistic), df / 2, 0.5)


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction (Lentz's method; Numerical Recipes' betacf), as no dependency of ours
    has the t distribution."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _regularized_beta(1 - x, b, a)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1) < 1e-12:
            break
    return front * result / a


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# What a comparison may claim about the method, at the seed level, against the effect declared worth finding.
ESTABLISHED, EXCLUDED, INCONCLUSIVE = "established", "excluded", "inconclusive"


def claim(level: SeedLevel | None, effect: float | None, p: float | None = None) -> str | None:
    """``established``: the seed-level interval excludes 0 (for a secondary comparison, its Holm-adjusted ``p``
    under 0.05 too); ``excluded``: the interval lies within ±effect; else ``inconclusive``. None without a
    seed-level result or a declared effect."""
    if level is None or effect is None:
        return None
    if (level.low > 0 or level.high < 0) and (p is None or p < 0.05):
        return ESTABLISHED
    if -effect < level.low and level.high < effect:
        return EXCLUDED
    return INCONCLUSIVE
