"""Benchmark: ``kdq_lab.evaluation.evaluate`` against ``lightfm.evaluation`` on the same model, same process.

A LightFM model with random parameters (10k users × 20k items, d = 64) is scored by
``precision_at_k`` + ``recall_at_k`` + ``auc_score`` and by one call of ``evaluate``
(which also computes ndcg, map, hit and mrr). The numbers must be identical.
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


@dataclass(frozen=True)
class EvaluationSize:
    users: int = 10_000
    items: int = 20_000
    components: int = 64
    train_per_user: int = 20
    test_per_user: int = 5
    k: int = 10
    seed: int = 0


def make_case(size: EvaluationSize) -> tuple[LightFM, sp.csr_matrix, sp.csr_matrix]:
    """A LightFM model with random parameters, and disjoint random train / test positives."""
    rng = np.random.default_rng(size.seed)
    model = LightFM(no_components=size.components, random_state=size.seed)
    model._initialize(size.components, size.items, size.users)
    model.item_embeddings[:] = rng.normal(0, 0.3, model.item_embeddings.shape)
    model.user_embeddings[:] = rng.normal(0, 0.3, model.user_embeddings.shape)
    model.item_biases[:] = rng.normal(0, 0.5, size.items)
    model.user_biases[:] = rng.normal(0, 0.1, size.users)

    def positives(per_user: int) -> sp.csr_matrix:
        rows = np.repeat(np.arange(size.users), per_user)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, rng.integers(0, size.items, len(rows)))),
            shape=(size.users, size.items),
        )
        matrix.data[:] = 1
        return matrix

    train = positives(size.train_per_user)
    test = positives(size.test_per_user)
    test = sp.csr_matrix(test - test.multiply(train))
    test.eliminate_zeros()
    test.data[:] = 1
    return model, train, test


def run(size: EvaluationSize = EvaluationSize(), repeats: int = 3, threads: int | None = None) -> dict[str, float]:
    """Time both sides ``repeats`` times (alternating), check identical numbers, return median figures."""
    threads = threads or os.cpu_count() or 1
    model, train, test = make_case(size)
    print(
        f"evaluation: {size.users:,} users x {size.items:,} items, d={size.components}, "
        f"{test.nnz:,} test positives, {threads} threads"
    )
    times: dict[str, list[float]] = {"lightfm": [], "ours": []}
    peaks: dict[str, list[float]] = {"lightfm": [], "ours": []}
    for _ in range(repeats):
        with peak_rss_mb() as memory:
            start = time.perf_counter()
            precision = precision_at_k(model, test, train, k=size.k, num_threads=threads)
            recall = recall_at_k(model, test, train, k=size.k, num_threads=threads)
            auc = auc_score(model, test, train, num_threads=threads)
            times["lightfm"].append(time.perf_counter() - start)
        peaks["lightfm"].append(memory["peak_mb"])
        with peak_rss_mb() as memory:
            start = time.perf_counter()
            table = evaluate(model, test, exclude=train, k=size.k, num_threads=threads)
            times["ours"].append(time.perf_counter() - start)
        peaks["ours"].append(memory["peak_mb"])
    difference = max(
        float(np.abs(table[f"precision@{size.k}"].to_numpy() - precision).max()),
        float(np.abs(table[f"recall@{size.k}"].to_numpy() - recall).max()),
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
        f"  speed-up {figures['speedup']:.1f}x (target >= 10x); largest per-user difference "
        f"{difference:.1e} (must be <= 1e-6)"
    )
    return figures
