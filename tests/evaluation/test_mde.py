"""Minimum detectable effect and equivalence: by hand, and checked against a bootstrap simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from kdq_lab.evaluation import paired_comparison
from kdq_lab.evaluation.resolution import equivalence_p, family_alpha, minimum_detectable_effect

REPLICATES = 4000  # binomial standard error of a rate near 0.8: 0.0063


def _diffs(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-user differences shaped like a ranking metric's: mostly zero, skewed, or plain normal.

    kdq-default's differences of ndcg@10 have skewness -0.5 to 0.7 and 33-67% zeros; the normal approximation
    is checked within that range (a skewness of 4 at 300 users gives 86% power at the MDE: conservative).
    """
    if kind == "normal":
        return rng.normal(0, 0.1, n)
    if kind == "zero_inflated":  # most users tie; the rest differ by a skewed amount (skewness about 0.7)
        return np.where(rng.random(n) < 0.6, 0.0, rng.beta(1, 4, n) - rng.beta(2, 6, n) + 0.05)
    return rng.choice([-1.0, 0.0, 0.0, 0.5], n)  # a few discrete values, as ndcg@k differences are


def _rejection_rate(population: np.ndarray, n: int, shift: float, alpha: float, seed: int) -> float:
    """Share of bootstrap test sets (n users drawn from ``population``, mean moved to ``shift``) in which a
    two-sided z-test of the mean difference at ``alpha`` rejects."""
    rng = np.random.default_rng(seed)
    centred = population - population.mean() + shift
    samples = centred[rng.integers(0, len(centred), size=(REPLICATES, n))]
    z = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / np.sqrt(n))
    return float((np.abs(z) > scipy_stats.norm.ppf(1 - alpha / 2)).mean())


def test_mde_by_hand():
    # (1.95996 + 0.84162) * sd / sqrt(n)
    assert minimum_detectable_effect(1.0, 100, 0.05) == pytest.approx(0.280158, abs=1e-6)
    assert minimum_detectable_effect(0.2, 400, 0.05) == pytest.approx(0.0280158, abs=1e-7)
    assert minimum_detectable_effect(1.0, 100, 0.01) == pytest.approx((2.575829 + 0.841621) / 10, abs=1e-6)
    assert minimum_detectable_effect(1.0, 100, 0.05, power=0.9) == pytest.approx((1.959964 + 1.281552) / 10, 1e-6)
    assert np.isnan(minimum_detectable_effect(1.0, 1, 0.05)) and np.isnan(minimum_detectable_effect(np.nan, 9, 0.05))
    assert minimum_detectable_effect([0.1, 0.2], [100, 400], 0.05) == pytest.approx([0.0280158, 0.0280158], 1e-5)


def test_family_alpha_is_bonferroni():
    assert family_alpha(0.05, 5) == pytest.approx(0.01)
    assert family_alpha(0.05, 1) == family_alpha(0.05, 0) == 0.05


@pytest.mark.parametrize("kind", ["normal", "zero_inflated", "discrete"])
@pytest.mark.parametrize(("n", "m"), [(300, 1), (1500, 6), (800, 20)])
def test_mde_gives_80_percent_power_in_a_bootstrap_simulation(kind, n, m):
    """A true difference of exactly the MDE is detected in 80% of resampled test sets; half of it far less often,
    and no difference at the level's rate."""
    rng = np.random.default_rng(n + m)
    population = _diffs(kind, 20_000, rng)
    alpha = family_alpha(0.05, m)
    mde = float(minimum_detectable_effect(population.std(ddof=1), n, alpha))
    power = _rejection_rate(population, n, mde, alpha, seed=1)
    assert power == pytest.approx(0.80, abs=0.03)
    assert _rejection_rate(population, n, mde / 2, alpha, seed=2) < 0.45
    assert _rejection_rate(population, n, 0.0, alpha, seed=3) < alpha + 0.02


def test_mde_uses_the_spread_paired_comparison_reports():
    rng = np.random.default_rng(0)
    base = pd.Series(rng.random(500))
    other = base + rng.normal(0.01, 0.05, 500)
    result = paired_comparison(other, base, n_boot=200)
    assert result["sd"] == pytest.approx(float((other - base).std(ddof=1)))
    assert paired_comparison(base, base)["sd"] == 0.0
    assert np.isnan(paired_comparison(base.iloc[:1], base.iloc[:1])["sd"]), "one user has no spread"


def test_equivalence_by_hand():
    # far inside the band with a small standard error: confidently equivalent
    assert equivalence_p(0.0, 0.1, 10_000, 0.005) < 1e-6
    # a mean on the band's edge: each one-sided test sits at 0.5
    assert equivalence_p(0.005, 0.1, 400, 0.005) == pytest.approx(0.5)
    assert equivalence_p(-0.005, 0.1, 400, 0.005) == pytest.approx(0.5)
    # outside the band: larger than 0.5
    assert equivalence_p(0.02, 0.1, 400, 0.005) > 0.9
    # z = (0.005 - 0.001) / (0.1 / 20) = 0.8 for the nearer edge
    assert equivalence_p(0.001, 0.1, 400, 0.005) == pytest.approx(scipy_stats.norm.sf(0.8))
    # no spread: exactly inside or not
    assert equivalence_p(0.0, 0.0, 50, 0.005) == 0.0 and equivalence_p(0.005, 0.0, 50, 0.005) == 1.0
    assert np.isnan(equivalence_p(0.0, 0.1, 1, 0.005)) and np.isnan(equivalence_p(0.0, 0.1, 50, np.nan))


@pytest.mark.parametrize("kind", ["normal", "zero_inflated"])
@pytest.mark.parametrize("n", [400, 2000])
def test_equivalence_keeps_its_level_on_the_band_edge(kind, n):
    """A true difference on the edge of the band is called equivalent in at most alpha of resampled test sets;
    a true difference of zero, with a band four standard errors wide, in nearly all (98%) of them."""
    rng = np.random.default_rng(n)
    population = _diffs(kind, 20_000, rng)
    sd = population.std(ddof=1)
    sesoi = 4 * sd / np.sqrt(n)
    for shift, check in ((sesoi, lambda rate: rate < 0.05 + 0.015), (0.0, lambda rate: rate > 0.95)):
        centred = population - population.mean() + shift
        samples = centred[np.random.default_rng(7).integers(0, len(centred), size=(REPLICATES, n))]
        p = equivalence_p(samples.mean(axis=1), samples.std(axis=1, ddof=1), n, sesoi)
        assert check(float((p < 0.05).mean())), (shift, float((p < 0.05).mean()))
