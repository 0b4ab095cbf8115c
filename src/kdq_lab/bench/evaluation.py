"""Benchmark: ``kdq_lab.evaluation.evaluate`` against ``lightfm.evaluation`` on the same model, same process.

Two cases, each scored by ``precision_at_k`` + ``recall_at_k`` + ``auc_score`` and by one
call of ``evaluate`` (which also computes ndcg, map, hit and mrr); the numbers must be
identical:

* ``random``: a LightFM model with random parameters, uniform random train and test
  items (10k users × 20k items, d = 64, 5 test items per user);
* ``trained``: built like a real workload: Zipf-shaped item popularity with taste
  clusters, a WARP model trained a few epochs (seeded, one thread), every user with 8
  test items (10k users × 20k items, d = 64).

A third case, ``scale`` (100k users × 120k items, d = 32, trained the same way), is timed
against the hardware instead of LightFM (whose evaluation would take about 20 minutes
there): the *bound* is a bare float32 product of the same batches plus one comparison
and count pass per test positive, in the same threads (:func:`bound_seconds`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k, recall_at_k

from kdq_lab.bench.memory import peak_rss_mb
from kdq_lab.evaluation import evaluate
from kdq_lab.evaluation.counting import Workspace
from kdq_lab.evaluation.ranking import map_batches, score_source


@dataclass(frozen=True)
class EvaluationCase:
    """One benchmark workload.

    Attributes
    ----------
    name
        Shown in the output.
    users, items, components
        Shape of the model.
    train_per_user, test_per_user
        Distinct items per user in train and test (fewer when a user's draws repeat).
    epochs
        WARP epochs trained (one thread, seeded); 0 gives random parameters and uniform items.
    zipf
        Exponent of the item popularity (trained cases).
    k
        Cut-off of precision and recall.
    seed
        Seed of every random choice.
    """

    name: str
    users: int = 10_000
    items: int = 20_000
    components: int = 64
    train_per_user: int = 20
    test_per_user: int = 5
    epochs: int = 0
    zipf: float = 1.0
    k: int = 10
    seed: int = 0


RANDOM = EvaluationCase("random")
TRAINED = EvaluationCase("trained", train_per_user=40, test_per_user=8, epochs=3)
SCALE = EvaluationCase(
    "scale", users=100_000, items=120_000, components=32, train_per_user=20, test_per_user=8, epochs=2
)
#: Clusters of the trained cases' taste structure, and the share of draws from a user's own cluster.
CLUSTERS, OWN_CLUSTER = 20, 0.5


def _matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def zipf_pairs(case: EvaluationCase, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with Zipf popularity and taste clusters, and each pair's position per user.

    Half of the draws come from the whole catalog with weight ``1 / rank ** zipf``, half from
    the user's cluster (a Zipf over the cluster's items by the same ranks).
    """
    per_user = case.train_per_user + case.test_per_user
    draws = 3 * per_user
    rank = rng.permutation(case.items)
    weight = 1.0 / (rank + 1.0) ** case.zipf
    catalog = rng.choice(case.items, size=(case.users, draws), p=weight / weight.sum())
    cluster = rng.integers(0, CLUSTERS, case.items)
    by_cluster = np.lexsort((rank, cluster))  # items by cluster, most popular first
    starts = np.searchsorted(cluster[by_cluster], np.arange(CLUSTERS))
    own = rng.integers(0, CLUSTERS, case.users)[:, None]
    sizes = np.bincount(cluster, minlength=CLUSTERS)[own]
    position = np.minimum(np.floor(sizes ** rng.random((case.users, draws))).astype(np.int64) - 1, sizes - 1)
    local = by_cluster[starts[own] + position]
    item = np.where(rng.random((case.users, draws)) < OWN_CLUSTER, local, catalog)
    keys = (np.arange(case.users)[:, None] * case.items + item).ravel()
    _, kept = np.unique(keys, return_index=True)
    kept.sort()  # draw order, grouped by user
    user = kept // draws
    within = np.arange(len(kept)) - np.searchsorted(user, user)
    keep = within < per_user
    return user[keep], item.ravel()[kept[keep]], within[keep]


def make_case(case: EvaluationCase) -> tuple[LightFM, sp.csr_matrix, sp.csr_matrix]:
    """The model, train positives (excluded from rankings) and test positives of ``case``."""
    rng = np.random.default_rng(case.seed)
    shape = (case.users, case.items)
    model = LightFM(loss="warp", no_components=case.components, random_state=case.seed)
    if case.epochs:
        user, item, within = zipf_pairs(case, rng)
        test = within < case.test_per_user
        train = _matrix(user[~test], item[~test], shape)
        model.fit(train.tocoo(), epochs=case.epochs, num_threads=1)
        return model, train, _matrix(user[test], item[test], shape)
    model._initialize(case.components, case.items, case.users)
    model.item_embeddings[:] = rng.normal(0, 0.3, model.item_embeddings.shape)
    model.user_embeddings[:] = rng.normal(0, 0.3, model.user_embeddings.shape)
    model.item_biases[:] = rng.normal(0, 0.5, case.items)
    model.user_biases[:] = rng.normal(0, 0.1, case.users)

    def positives(per_user: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(case.users), per_user)
        return _matrix(rows, rng.integers(0, case.items, len(rows)), shape)

    train = positives(case.train_per_user)
    test = positives(case.test_per_user)
    test = sp.csr_matrix(test - test.multiply(train))
    test.eliminate_zeros()
    return model, train, test


def bound_seconds(model: LightFM, test: sp.csr_matrix, threads: int) -> float:
    """The matmul-plus-count bound: the same batches' float32 product and one count pass per positive."""
    source = score_source(model, *test.shape)
    lengths = test.getnnz(axis=1)
    users = np.flatnonzero(lengths > 0)
    users = users[np.argsort(-lengths[users], kind="stable")]

    def work(span: slice, ws: Workspace) -> None:
        scores = source.scores(users[span], ws.scores)
        counts = lengths[users[span]]
        for slot in range(int(counts.max())):
            rows = int(np.count_nonzero(counts > slot))
            ws.count(scores[:rows], scores[:rows, slot], np.greater_equal)

    start = time.perf_counter()
    map_batches(work, len(users), test.shape[1], threads)
    return time.perf_counter() - start


def _time_ours(model: LightFM, train: sp.csr_matrix, test: sp.csr_matrix, k: int, threads: int) -> tuple:
    with peak_rss_mb() as memory:
        start = time.perf_counter()
        table = evaluate(model, test, exclude=train, k=k, num_threads=threads)
        seconds = time.perf_counter() - start
    return table, seconds, memory["peak_mb"]


def compare(case: EvaluationCase, repeats: int = 3, threads: int | None = None) -> dict[str, float]:
    """Time both sides ``repeats`` times (alternating), check identical numbers, return median figures."""
    threads = threads or os.cpu_count() or 1
    model, train, test = make_case(case)
    print(
        f"evaluation [{case.name}]: {case.users:,} users x {case.items:,} items, d={case.components}, "
        f"{test.nnz:,} test positives, {threads} threads"
        + (f", WARP trained {case.epochs} epochs on Zipf({case.zipf}) popularity" if case.epochs else "")
    )
    times: dict[str, list[float]] = {"lightfm": [], "ours": []}
    peaks: dict[str, list[float]] = {"lightfm": [], "ours": []}
    for _ in range(repeats):
        with peak_rss_mb() as memory:
            start = time.perf_counter()
            precision = precision_at_k(model, test, train, k=case.k, num_threads=threads)
            recall = recall_at_k(model, test, train, k=case.k, num_threads=threads)
            auc = auc_score(model, test, train, num_threads=threads)
            times["lightfm"].append(time.perf_counter() - start)
        peaks["lightfm"].append(memory["peak_mb"])
        table, seconds, peak = _time_ours(model, train, test, case.k, threads)
        times["ours"].append(seconds)
        peaks["ours"].append(peak)
    difference = max(
        float(np.abs(table[f"precision@{case.k}"].to_numpy() - precision).max()),
        float(np.abs(table[f"recall@{case.k}"].to_numpy() - recall).max()),
        float(np.abs(table["auc"].to_numpy() - auc).max()),
    )
    figures = {
        "lightfm_seconds": float(np.median(times["lightfm"])),
        "ours_seconds": float(np.median(times["ours"])),
        "lightfm_peak_mb": float(np.median(peaks["lightfm"])),
        "ours_peak_mb": float(np.median(peaks["ours"])),
        "max_abs_difference": difference,
    }
    figures["speedup"] = figures["lightfm_seconds"] / figures["ours_seconds"]
    print(
        f"  lightfm.evaluation (precision+recall+auc): {figures['lightfm_seconds']:6.2f} s  "
        f"peak {figures['lightfm_peak_mb']:6.0f} MB"
    )
    print(
        f"  kdq_lab evaluate (all metrics)           : {figures['ours_seconds']:6.2f} s  "
        f"peak {figures['ours_peak_mb']:6.0f} MB"
    )
    print(
        f"  speed-up {figures['speedup']:.1f}x (target >= 20x); largest per-user difference "
        f"{difference:.1e} (must be <= 1e-6)"
    )
    return figures


def against_bound(case: EvaluationCase = SCALE, repeats: int = 1, threads: int | None = None) -> dict[str, float]:
    """Time ``evaluate`` on ``case`` against the matmul-plus-count bound (no LightFM side)."""
    threads = threads or os.cpu_count() or 1
    start = time.perf_counter()
    model, train, test = make_case(case)
    setup = time.perf_counter() - start
    print(
        f"evaluation [{case.name}]: {case.users:,} users x {case.items:,} items, d={case.components}, "
        f"{test.nnz:,} test positives, {threads} threads, WARP trained {case.epochs} epochs "
        f"(set-up {setup:.0f} s); against the bound, not LightFM (about 20 minutes here)"
    )
    ours, bounds, peaks = [], [], []
    for _ in range(repeats):
        _, seconds, peak = _time_ours(model, train, test, case.k, threads)
        ours.append(seconds)
        peaks.append(peak)
        bounds.append(bound_seconds(model, test, threads))
    figures = {
        "ours_seconds": float(np.median(ours)),
        "bound_seconds": float(np.median(bounds)),
        "ours_peak_mb": float(np.median(peaks)),
    }
    figures["bound_fraction"] = figures["bound_seconds"] / figures["ours_seconds"]
    print(
        f"  kdq_lab evaluate (all metrics): {figures['ours_seconds']:6.2f} s (target <= 30 s)  "
        f"peak {figures['ours_peak_mb']:6.0f} MB above the model and data"
    )
    print(
        f"  matmul + one count pass per positive: {figures['bound_seconds']:6.2f} s; "
        f"achieved {figures['bound_fraction']:.0%} of the bound"
    )
    return figures


def run(repeats: int = 3, threads: int | None = None) -> dict[str, dict[str, float]]:
    """Both LightFM comparisons, then the scale case against the bound."""
    return {
        "random": compare(RANDOM, repeats, threads),
        "trained": compare(TRAINED, repeats, threads),
        "scale": against_bound(SCALE, 1, threads),
    }
