"""The resolution of a family of paired comparisons: MDE, equivalence and a three-way verdict.

Every comparison gets its minimum detectable effect (``mde``) at 80% power and the Bonferroni level
``alpha / m`` of its Holm family of ``m`` tests (:func:`kdq_lab.evaluation.resolution.family_alpha`).
Where the experiment declares a smallest effect of interest for the metric (``sesoi: {ndcg@10: 0.005}``),
each comparison is also tested for equivalence within ``±sesoi`` (two one-sided tests), and those p-values
are Holm-adjusted over the same family. The verdict is then:

* ``different``: the difference test is significant after Holm's adjustment;
* ``equivalent``: otherwise, the equivalence test is significant after Holm's adjustment;
* ``inconclusive``: neither; the ``mde`` says how large a difference this test set could have detected;
* ``identical``: every user's difference is exactly 0 (no test is needed, and the normal approximation
  behind the MDE has nothing to approximate), e.g. two models that fall back to the same ranking.

Without a ``sesoi`` nothing is ever called equivalent, and a non-significant comparison is inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from kdq_lab.evaluation import holm
from kdq_lab.evaluation.resolution import equivalence_p, family_alpha, minimum_detectable_effect

ALPHA = 0.05
DIFFERENT, EQUIVALENT, INCONCLUSIVE, IDENTICAL = "different", "equivalent", "inconclusive", "identical"
RESOLUTION_COLUMNS = ["sd", "mde", "sesoi", "p_equivalence", "p_equivalence_holm", "verdict"]


def verdicts(
    p_holm: np.ndarray, p_equivalence_holm: np.ndarray, identical: np.ndarray, alpha: float = ALPHA
) -> np.ndarray:
    """``identical``, ``different``, ``equivalent`` or ``inconclusive`` for each comparison (module docstring)."""
    different = np.asarray(p_holm, dtype=np.float64) < alpha
    equivalent = np.asarray(p_equivalence_holm, dtype=np.float64) < alpha
    graded = np.where(different, DIFFERENT, np.where(equivalent, EQUIVALENT, INCONCLUSIVE))
    return np.where(np.asarray(identical, dtype=bool), IDENTICAL, graded)


def resolve_family(family: pd.DataFrame, sesoi: float | None, alpha: float = ALPHA) -> pd.DataFrame:
    """Resolution columns of one Holm family.

    ``family`` has ``diff``, ``sd``, ``n_users`` and ``p_holm`` (the difference test, already adjusted
    over this family); returns the same index with :data:`RESOLUTION_COLUMNS`. ``m`` counts the family's
    tests with a p-value.
    """
    m = int(np.isfinite(family["p_holm"].to_numpy(dtype=np.float64)).sum())
    out = pd.DataFrame(index=family.index)
    out["sd"] = family["sd"].to_numpy(dtype=np.float64)
    out["mde"] = minimum_detectable_effect(out["sd"], family["n_users"], family_alpha(alpha, m))
    out["sesoi"] = np.nan if sesoi is None else float(sesoi)
    if sesoi is None:
        out["p_equivalence"] = out["p_equivalence_holm"] = np.nan
    else:
        out["p_equivalence"] = equivalence_p(family["diff"], out["sd"], family["n_users"], sesoi)
        out["p_equivalence_holm"] = holm(out["p_equivalence"].to_numpy())
    identical = (family["n_users"].to_numpy() > 0) & (out["sd"].to_numpy() == 0) & (family["diff"].to_numpy() == 0)
    out["verdict"] = verdicts(family["p_holm"].to_numpy(), out["p_equivalence_holm"].to_numpy(), identical, alpha)
    return out


def resolve_table(
    table: pd.DataFrame, family_keys: list[str], sesoi: Mapping[str, float], alpha: float = ALPHA
) -> pd.DataFrame:
    """``table`` (with ``metric`` and the columns :func:`resolve_family` reads) with the resolution columns,
    each family being the rows sharing ``family_keys`` (which must include ``metric``)."""
    if not len(table):
        return table
    parts = [
        resolve_family(family, sesoi.get(str(family["metric"].iloc[0])), alpha)
        for _, family in table.groupby(family_keys, sort=False)
    ]
    resolved = pd.concat(parts).reindex(table.index)
    return pd.concat([table.drop(columns=[c for c in RESOLUTION_COLUMNS if c in table]), resolved], axis=1)
