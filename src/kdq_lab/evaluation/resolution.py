"""How small a paired difference a test set can detect, and equivalence within a smallest effect of interest.

Both use the normal approximation on the users' paired differences (each user's difference averaged
over seeds, as :func:`kdq_lab.evaluation.paired_comparison` pairs them): the standard error of the
mean difference is ``sd / sqrt(n)``.

* :func:`minimum_detectable_effect`: the smallest true mean difference a two-sided test at level
  ``alpha`` detects with probability ``power``: ``(z(1 - alpha/2) + z(power)) * sd / sqrt(n)``.
* :func:`family_alpha`: the level a comparison faces in a Holm family of ``m`` tests, taken as the
  Bonferroni level ``alpha / m``: Holm's first step, and the strictest any comparison of the family faces, so
  an MDE computed at it holds whichever step the comparison sits at.
* :func:`equivalence_p`: two one-sided tests (Schuirmann 1987) of ``|mean difference| < sesoi``; the
  larger of the two one-sided p-values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

POWER = 0.8


def family_alpha(alpha: float, m: int) -> float:
    """The Bonferroni level ``alpha / m`` of a family of ``m`` tests (``alpha`` itself for one or none)."""
    return alpha / max(m, 1)


def minimum_detectable_effect(sd: ArrayLike, n: ArrayLike, alpha: float, power: float = POWER) -> np.ndarray:
    """Smallest true mean difference a two-sided paired test at ``alpha`` detects with ``power``.

    ``sd`` is the spread (ddof 1) of the per-user differences and ``n`` the number of users; NaN where
    ``n < 2`` or ``sd`` is not finite. Vectorised over ``sd`` and ``n``.
    """
    sd, n = np.broadcast_arrays(np.asarray(sd, dtype=np.float64), np.asarray(n, dtype=np.float64))
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 2) & np.isfinite(sd), z * sd / np.sqrt(n), np.nan)


def equivalence_p(diff: ArrayLike, sd: ArrayLike, n: ArrayLike, sesoi: ArrayLike) -> np.ndarray:
    """p-value of two one-sided tests that the true mean difference lies within ``±sesoi``.

    Small when the mean difference is confidently inside the band. A zero spread with a mean inside the
    band gives 0, on or outside it 1; NaN where ``n < 2`` or an input is NaN. Vectorised.
    """
    diff, sd, n, sesoi = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (diff, sd, n, sesoi)))
    with np.errstate(invalid="ignore", divide="ignore"):
        se = sd / np.sqrt(n)
        lower = scipy_stats.norm.sf((diff + sesoi) / se)  # H0: diff <= -sesoi
        upper = scipy_stats.norm.cdf((diff - sesoi) / se)  # H0: diff >= +sesoi
    p = np.maximum(lower, upper)
    exact = np.where(np.abs(diff) < sesoi, 0.0, 1.0)
    p = np.where(se == 0, exact, p)
    bad = (n < 2) | ~np.isfinite(diff) | ~np.isfinite(sd) | ~np.isfinite(sesoi)
    return np.where(bad, np.nan, p)
