"""The metric definitions against two referees, ranx and pytrec_eval (trec_eval), on the same rankings.

Where the definitions agree (ndcg@k, precision@k, recall@k, mrr uncut, hit@k, and the lab's rr@k = ranx's
mrr@k) the numbers are equal per user to 1e-9; map@k agrees once rescaled as the README's "Metric definitions"
says: the lab divides by min(n_test, k), the referees by n_test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightfm_fixtures import disjoint, random_interactions, random_model

from kdq_lab.evaluation import evaluate
from kdq_lab.evaluation.ranking import top_k

KS = (1, 5, 10, 20)


class TiedPopularity:
    """A scorer whose integer scores tie a lot, with a declared tie order (a permutation of the items)."""

    def __init__(self, train: sp.csr_matrix, seed: int):
        self.counts = np.asarray(train.sum(axis=0)).ravel().astype(np.float32) // 2
        self.order = np.random.default_rng(seed).permutation(train.shape[1])

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(users), 1))

    def tie_order(self) -> np.ndarray:
        return self.order


def matrices(n_users: int, n_items: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    train = random_interactions(n_users, n_items, n_users * n_items // 8, seed)
    test = disjoint(random_interactions(n_users, n_items, n_users * n_items // 20, seed + 1), train)
    return train, test


def lab_ranking_scores(model: TiedPopularity, users: np.ndarray, train: sp.csr_matrix) -> dict[str, dict[str, float]]:
    """The lab's own ranking of every eligible item (its tie order decides ties), as strictly decreasing scores."""
    n_items = train.shape[1]
    lists = top_k(model, users, n_items, exclude=train)
    return {str(u): {str(item): float(n_items - p) for p, item in enumerate(row) if item >= 0}
            for u, row in zip(users, lists)}  # fmt: skip


def lightfm_scores(model, users: np.ndarray, train: sp.csr_matrix) -> dict[str, dict[str, float]]:
    """LightFM's own float32 scores of every eligible item; the test needs them free of ties."""
    n_items = train.shape[1]
    out = {}
    for u in users:
        eligible = np.setdiff1d(np.arange(n_items), train[u].indices)
        scores = model.predict(np.full(len(eligible), u, dtype=np.int32), eligible.astype(np.int32))
        assert len(np.unique(scores)) == len(scores), "this case must not have ties"
        out[str(u)] = {str(item): float(s) for item, s in zip(eligible, scores)}
    return out


def referees(test: sp.csr_matrix, run: dict[str, dict[str, float]], ks: tuple[int, ...]) -> pd.DataFrame:
    """Per user: ranx's and pytrec_eval's numbers, named ``<referee>:<lab metric>``."""
    import pytrec_eval  # the referees (dev extras), imported here: ranx takes seconds to import
    import ranx

    users = np.flatnonzero(test.getnnz(axis=1))
    qrels = {str(u): {str(item): 1 for item in test[u].indices} for u in users}
    cut = ",".join(map(str, ks))
    trec = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{cut}", f"P.{cut}", f"recall.{cut}", f"map_cut.{cut}",
                                                  "recip_rank", f"success.{cut}"}).evaluate(run)  # fmt: skip
    ranx_run = ranx.Run(run)
    names = [f"{m}@{k}" for m in ("ndcg", "precision", "recall", "map", "hit_rate", "mrr") for k in ks] + ["mrr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes
        ranx.evaluate(ranx.Qrels(qrels), ranx_run, names, make_comparable=True)
    rows = []
    for u in users:
        q = str(u)
        row = {"user": u, "trec:mrr": trec[q]["recip_rank"], "ranx:mrr": ranx_run.scores["mrr"][q]}
        for k in ks:
            for lab, trec_name, ranx_name in (("ndcg", "ndcg_cut", "ndcg"), ("precision", "P", "precision"),
                                              ("recall", "recall", "recall"), ("map", "map_cut", "map"),
                                              ("hit", "success", "hit_rate")):  # fmt: skip
                row[f"trec:{lab}@{k}"] = trec[q][f"{trec_name}_{k}"]
                row[f"ranx:{lab}@{k}"] = ranx_run.scores[f"{ranx_name}@{k}"][q]
            row[f"ranx:rr@{k}"] = ranx_run.scores[f"mrr@{k}"][q]  # ranx's mrr@k is the lab's rr@k
        rows.append(row)
    return pd.DataFrame(rows)


def assert_agree(table: pd.DataFrame, found: pd.DataFrame, ks: tuple[int, ...]) -> None:
    merged = table.merge(found, on="user", validate="one_to_one")
    assert len(merged) == len(table) == len(found) > 0
    for k in ks:
        # map@k: the lab divides by min(n_test, k), the referees by n_test
        merged[f"rescaled map@{k}"] = merged[f"map@{k}"] * np.minimum(merged["n_test"], k) / merged["n_test"]
    for referee in ("trec", "ranx"):
        for metric in [f"{m}@{k}" for m in ("ndcg", "precision", "recall", "hit") for k in ks] + ["mrr"]:
            np.testing.assert_allclose(merged[metric], merged[f"{referee}:{metric}"], rtol=0, atol=1e-9,
                                       err_msg=f"{referee} {metric}")  # fmt: skip
        for k in ks:
            np.testing.assert_allclose(merged[f"rescaled map@{k}"], merged[f"{referee}:map@{k}"], rtol=0, atol=1e-9,
                                       err_msg=f"{referee} map@{k}")  # fmt: skip
    for k in ks:
        np.testing.assert_allclose(merged[f"rr@{k}"], merged[f"ranx:rr@{k}"], rtol=0, atol=1e-9, err_msg=f"rr@{k}")


# (users, items, seed): 12 items leave fewer than k = 20 eligible, where precision@k still divides by k
CASES = [(120, 90, 0), (80, 12, 1)]


@pytest.mark.parametrize("n_users, n_items, seed", CASES)
def test_a_model_with_a_tie_order_agrees_with_ranx_and_trec_eval(n_users, n_items, seed):
    train, test = matrices(n_users, n_items, seed)
    model = TiedPopularity(train, seed)
    assert len(np.unique(model.counts)) < n_items / 2, "a case with many ties"
    table = evaluate(model, test, exclude=train, k=list(KS))
    run = lab_ranking_scores(model, np.flatnonzero(test.getnnz(axis=1)), train)
    assert_agree(table, referees(test, run, KS), KS)


@pytest.mark.parametrize("n_users, n_items, seed", CASES)
def test_a_lightfm_model_agrees_with_ranx_and_trec_eval_on_its_own_scores(n_users, n_items, seed):
    train, test = matrices(n_users, n_items, seed)
    model = random_model(n_users, n_items, 16, seed)
    table = evaluate(model, test, exclude=train, k=list(KS))
    run = lightfm_scores(model, np.flatnonzero(test.getnnz(axis=1)), train)
    assert_agree(table, referees(test, run, KS), KS)


def test_the_rescaling_matters_where_n_test_exceeds_k():
    """The lab's map@k is not the referees' without the rescaling: the test above would notice a changed denominator."""
    train, test = matrices(120, 90, 0)
    model = TiedPopularity(train, 0)
    table = evaluate(model, test, exclude=train, k=[1])
    found = referees(test, lab_ranking_scores(model, np.flatnonzero(test.getnnz(axis=1)), train), (1,))
    merged = table.merge(found, on="user")
    differ = (merged["n_test"] > 1) & (merged["map@1"] > 0)
    assert differ.any() and not np.allclose(merged.loc[differ, "map@1"], merged.loc[differ, "ranx:map@1"])
