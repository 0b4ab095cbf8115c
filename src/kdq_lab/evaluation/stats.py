"""Confidence intervals and paired comparisons over users (seeded, vectorised)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

_CHUNK = 250  # bootstrap replicates drawn at a time


def _replicate_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap means of each column of ``values`` (users × metrics): n_boot × metrics.

    Each replicate resamples users with replacement, drawn as multinomial counts so a
    whole chunk of replicates is one matrix product.
    """
    rng = np.random.default_rng(seed)
    n = len(values)
    out = []
    for start in range(0, n_boot, _CHUNK):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(_CHUNK, n_boot - start))
        out.append(counts @ values / n)
    return np.vstack(out)


def bootstrap_ci(per_user: pd.DataFrame, metrics: list[str], n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> pd.DataFrame:
    """Mean and percentile bootstrap interval of each metric over users.

    Returns a frame indexed by metric with columns ``mean``, ``lo``, ``hi``, ``n_users``.
    Users with a missing value of a metric are left out of that metric only.
    """
    alpha = (1 - level) / 2
    rows = {}
    for metric in metrics:
        values = per_user[metric].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            rows[metric] = {"mean": np.nan, "lo": np.nan, "hi": np.nan, "n_users": 0}
            continue
        means = _replicate_means(values[:, None], n_boot, seed)[:, 0]
        rows[metric] = {"mean": values.mean(), "lo": np.quantile(means, alpha), "hi": np.quantile(means, 1 - alpha),
                        "n_users": len(values)}
    return pd.DataFrame.from_dict(rows, orient="index")


def paired_comparison(model: pd.Series, reference: pd.Series, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, float]:
    """Difference ``model - reference`` on the same users: mean, bootstrap interval, p-values.

    Both series are indexed by user; only users present in both count. ``p_wilcoxon`` is the
    two-sided Wilcoxon signed-rank test (zero differences dropped); ``p_bootstrap`` is the
    two-sided share of bootstrap means on the other side of zero.
    """
    joined = pd.concat([model.rename("a"), reference.rename("b")], axis=1, join="inner").dropna()
    diff = (joined["a"] - joined["b"]).to_numpy(dtype=np.float64)
    if len(diff) == 0:
        return {"diff": np.nan, "lo": np.nan, "hi": np.nan, "p_wilcoxon": np.nan, "p_bootstrap": np.nan, "n_users": 0}
    means = _replicate_means(diff[:, None], n_boot, seed)[:, 0]
    alpha = (1 - level) / 2
    nonzero = diff[diff != 0]
    p_wilcoxon = float(scipy_stats.wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0
    p_bootstrap = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    return {"diff": float(diff.mean()), "lo": float(np.quantile(means, alpha)),
            "hi": float(np.quantile(means, 1 - alpha)), "p_wilcoxon": p_wilcoxon, "p_bootstrap": p_bootstrap,
            "n_users": int(len(diff))}
