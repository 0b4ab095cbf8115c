"""Benchmark: the LightFM wrapper's training overhead over a raw ``LightFM.fit`` with the same epochs.

Both train the same WARP model on the default KDQ catalog (per-user temporal split,
user + item features) in deterministic mode. The wrapper's time includes composing
its feature matrices; early stopping is off so both run every epoch.
"""

from __future__ import annotations

import time

import numpy as np
from lightfm import LightFM

from kdq_lab.config import Paths
from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.splits import SplitConfig
from kdq_lab.data.store import load_split, prepare
from kdq_lab.models import LightFMConfig, LightFMHybrid, TrainData


def run(repeats: int = 3, epochs: int = 10, components: int = 64) -> dict[str, float]:
    """Alternate raw and wrapped fits ``repeats`` times; return median seconds and the overhead."""
    paths = Paths.default()
    split = load_split(prepare(resolve_dataset("kdq-catalog", paths), SplitConfig(), paths.processed))
    data = TrainData.from_split(split, refit=True)
    config = LightFMConfig(no_components=components, epochs=epochs, patience=None, features="both")
    print(
        f"training: {data.n_users:,} users x {data.n_items:,} items, {data.interactions.nnz:,} interactions, "
        f"{epochs} epochs, d={components}"
    )
    template = LightFMHybrid(config).fit(data)  # warm-up, and the composed matrices for the raw side
    interactions = data.interactions.tocoo().astype(np.float32)
    times: dict[str, list[float]] = {"raw": [], "wrapper": []}
    for _ in range(repeats):
        start = time.perf_counter()
        raw = LightFM(
            no_components=components,
            loss=config.loss,
            learning_rate=config.learning_rate,
            random_state=config.random_state,
        )
        raw.fit(
            interactions,
            user_features=template.user_features_,
            item_features=template.item_features_,
            epochs=epochs,
            num_threads=1,
        )
        times["raw"].append(time.perf_counter() - start)
        start = time.perf_counter()
        LightFMHybrid(config).fit(data)
        times["wrapper"].append(time.perf_counter() - start)
    raw_s, wrapped_s = float(np.median(times["raw"])), float(np.median(times["wrapper"]))
    overhead = wrapped_s / raw_s - 1
    print(f"  raw LightFM.fit : {raw_s:6.2f} s")
    print(f"  LightFMHybrid   : {wrapped_s:6.2f} s")
    print(f"  wrapper overhead {overhead:+.1%} (target <= 5%)")
    return {"raw_seconds": raw_s, "wrapper_seconds": wrapped_s, "overhead": overhead}
