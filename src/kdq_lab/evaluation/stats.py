"""Confidence intervals and paired comparisons over users (seeded, vectorised)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

_CHUNK_BYTES = 1 << 25  # memory for one chunk of replicate counts


def _replicate_counts(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of bootstrap replicates as counts (replicates × users): how often each user is drawn."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _CHUNK_BYTES // (24 * max(n, 1))))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _replicate_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap means of each column of ``values`` (users × metrics), NaNs skipped: n_boot × metrics."""
    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    out = []
    for counts in _replicate_counts(len(values), n_boot, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((counts @ clean) / (counts @ finite))
    return np.vstack(out)


def replicate_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap means of each column of ``values`` (users × columns; users resampled jointly, NaNs skipped).

    Returns n_boot × columns: the same replicates for every column, so ratios and differences of columns are paired.
    """
    return _replicate_means(np.asarray(values, dtype=np.float64).reshape(len(values), -1), n_boot, seed)


def bootstrap_ci(
    per_user: pd.DataFrame, metrics: list[str], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Mean and percentile bootstrap interval of each metric over users.

    Users are resampled with replacement (the same replicates for every metric). Returns a
    frame indexed by metric with ``mean``, ``lo``, ``hi`` and ``n_users`` (users with a
    finite value of that metric).
    """
    values = per_user[metrics].to_numpy(dtype=np.float64)
    alpha = (1 - level) / 2
    counts = np.isfinite(values).sum(axis=0)
    if len(values) == 0:
        empty = np.full(len(metrics), np.nan)
        return pd.DataFrame({"mean": empty, "lo": empty, "hi": empty, "n_users": counts}, index=metrics)
    means = _replicate_means(values, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.where(np.isfinite(values), values, 0.0).sum(axis=0) / counts
    lo, hi = (
        np.array([np.quantile(col[np.isfinite(col)], q) if np.isfinite(col).any() else np.nan for col in means.T])
        for q in (alpha, 1 - alpha)
    )
    return pd.DataFrame({"mean": center, "lo": lo, "hi": hi, "n_users": counts}, index=metrics)


def pooled_bootstrap_ci(
    tables: list[pd.DataFrame], metrics: list[str], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Mean over seeds of each metric's per-seed mean, with a stratified percentile bootstrap interval.

    ``tables`` are per-user tables of the same run on several seeds (splits). Users are
    resampled within each seed, the per-seed means averaged: the interval of the seed-mean,
    given these seeds. Returns ``mean``, ``lo``, ``hi``, ``std`` (between-seed, ddof=1; NaN
    for one seed) and ``n_users`` (summed), indexed by metric.
    """
    means = np.array([[t[m].mean() if len(t) else np.nan for m in metrics] for t in tables])
    replicates = [
        (
            _replicate_means(t[metrics].to_numpy(dtype=np.float64), n_boot, seed + i)
            if len(t)
            else np.full((n_boot, len(metrics)), np.nan)
        )
        for i, t in enumerate(tables)
    ]
    with warnings.catch_warnings():  # a segment without users in every seed stays NaN; n_users says why
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = np.nanmean(np.stack(replicates), axis=0) if replicates else np.zeros((0, len(metrics)))
        mean = np.nanmean(means, axis=0)
        std = np.nanstd(means, axis=0, ddof=1) if len(tables) > 1 else np.full(len(metrics), np.nan)
    alpha = (1 - level) / 2
    lo, hi = (
        np.array([np.quantile(c[np.isfinite(c)], q) if np.isfinite(c).any() else np.nan for c in pooled.T])
        for q in (alpha, 1 - alpha)
    )
    counts = np.array([sum(int(t[m].notna().sum()) for t in tables) for m in metrics])
    return pd.DataFrame({"mean": mean, "lo": lo, "hi": hi, "std": std, "n_users": counts}, index=metrics)


def paired_comparison(
    model: pd.Series | list[pd.Series],
    reference: pd.Series | list[pd.Series],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Difference ``model - reference`` on the same users: mean, bootstrap interval, p-values.

    Both are series indexed by user (or lists of them, one per seed: each user's difference
    is then averaged over the seeds that tested them, and users are the units). Only users
    present in both count. ``p_wilcoxon`` is the two-sided Wilcoxon signed-rank test (zero
    differences dropped); ``p_bootstrap`` is the two-sided share of bootstrap means on the
    other side of zero. ``sd`` is the spread (ddof 1) of the users' differences, for the
    resolution (:mod:`kdq_lab.evaluation.resolution`).
    """
    models = model if isinstance(model, list) else [model]
    references = reference if isinstance(reference, list) else [reference]
    differences = [
        pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna().eval("a - b")
        for a, b in zip(models, references)
    ]
    joined = pd.concat(differences) if differences else pd.Series(dtype=float)
    diff = joined.groupby(level=0).mean().to_numpy(dtype=np.float64)
    if len(diff) == 0:
        empty = {"diff": np.nan, "lo": np.nan, "hi": np.nan, "p_wilcoxon": np.nan, "p_bootstrap": np.nan}
        return empty | {"n_users": 0, "sd": np.nan}
    means = _replicate_means(diff[:, None], n_boot, seed)[:, 0]
    alpha = (1 - level) / 2
    nonzero = diff[diff != 0]
    p_wilcoxon = float(scipy_stats.wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0
    p_bootstrap = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    return {
        "diff": float(diff.mean()),
        "lo": float(np.quantile(means, alpha)),
        "hi": float(np.quantile(means, 1 - alpha)),
        "p_wilcoxon": p_wilcoxon,
        "p_bootstrap": p_bootstrap,
        "n_users": len(diff),
        "sd": float(diff.std(ddof=1)) if len(diff) > 1 else np.nan,
    }


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values for multiple comparisons (family-wise error).

    The i-th smallest of m p-values is multiplied by ``m - i + 1`` (i from 1), the results are
    made non-decreasing in that order and capped at 1. NaN p-values stay NaN and do not
    count towards m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    adjusted[order] = np.maximum.accumulate(scaled) if m else scaled
    return adjusted
