"""Benchmark: the lab's matrix builder against ``lightfm.data.Dataset``.

Both sides start from the same DataFrames (users, items, interactions) and end with
the interaction, weight and feature matrices (identity block, ``l1`` rows). The
LightFM side includes building the tuple lists its caller has to build. Each side
runs in a fresh process; the parent checks the matrices are identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kdq_lab.bench.memory import peak_rss_mb
from kdq_lab.data.schema import EntitySpec
from kdq_lab.linalg import identical

MULTI_SEP = "|"


@dataclass(frozen=True)
class BuilderSize:
    users: int = 50_000
    items: int = 20_000
    interactions: int = 2_000_000
    seed: int = 0


def make_frames(size: BuilderSize) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Synthetic users (~350 features), items (~500 features) and interactions with repeats."""
    rng = np.random.default_rng(size.seed)

    def side(n: int, prefix: str, categorical: list[int], multi: list[int]) -> pd.DataFrame:
        frame = {f"{prefix}_id": np.char.add(prefix, np.arange(n).astype(str))}
        for c, width in enumerate(categorical):
            frame[f"cat{c}"] = np.char.add(f"c{c}v", rng.integers(0, width, n).astype(str))
        for m, width in enumerate(multi):
            count = rng.integers(1, 5, n)
            codes = rng.integers(0, width, (n, 4))
            # a value repeated within a cell is dropped (validation forbids repeats), then slots beyond count
            repeated = np.zeros_like(codes, dtype=bool)
            for k in range(1, 4):
                repeated[:, k] = (codes[:, :k] == codes[:, k : k + 1]).any(axis=1)
            values = np.char.add(f"m{m}v", codes.astype(str))
            keep = ~repeated & (np.arange(4)[None, :] < count[:, None])
            joined = pd.Series(values[:, 0])
            for k in range(1, 4):
                joined = joined.where(~keep[:, k], joined + MULTI_SEP + values[:, k])
            frame[f"multi{m}"] = joined.to_numpy()
        return pd.DataFrame(frame)

    users = side(size.users, "u", [20, 30, 50], [100, 150])
    items = side(size.items, "i", [10, 40, 100], [150, 200])
    popularity = rng.zipf(1.3, size.interactions) % size.items
    interactions = pd.DataFrame(
        {
            "user_id": np.char.add("u", rng.integers(0, size.users, size.interactions).astype(str)),
            "item_id": np.char.add("i", popularity.astype(str)),
            "weight": rng.integers(1, 5, size.interactions).astype(np.float32),
        }
    )
    return users, items, interactions


def _entity(frame: pd.DataFrame, id_column: str) -> EntitySpec:
    return EntitySpec(
        file="bench.csv",
        id=id_column,
        categorical=tuple(c for c in frame.columns if c.startswith("cat")),
        multi_valued=tuple(c for c in frame.columns if c.startswith("multi")),
    )


def build_ours(users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame) -> dict[str, sp.csr_matrix]:
    """The lab's builder: vocabularies, multi-hot features, identity + l1, interactions."""
    from kdq_lab.data.build import FeatureConfig, FeatureVocabulary, compose_features, interaction_matrices

    config = FeatureConfig(identity=True, normalize="l1")
    out = {}
    for name, frame, id_column in (("user_features", users, "u_id"), ("item_features", items, "i_id")):
        vocab = FeatureVocabulary.fit(frame, _entity(frame, id_column), MULTI_SEP)
        out[name] = compose_features(vocab.transform(frame)[0], config)
    binary, weights = interaction_matrices(
        pd.Index(users["u_id"]),
        pd.Index(items["i_id"]),
        interactions["user_id"],
        interactions["item_id"],
        interactions["weight"],
    )
    out["interactions"], out["weights"] = binary, weights
    return out


def build_lightfm(users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame) -> dict[str, sp.csr_matrix]:
    """``lightfm.data.Dataset`` with the tuple lists an idiomatic caller builds from the frames."""
    from lightfm.data import Dataset

    def feature_lists(frame: pd.DataFrame, id_column: str) -> tuple[list, list]:
        columns = [c for c in frame.columns if c != id_column]
        rows = []
        for record in frame.itertuples(index=False):
            features = []
            for column, value in zip(columns, record[1:]):
                values = value.split(MULTI_SEP) if column.startswith("multi") else [value]
                features += [f"{column}:{v}" for v in values]
            rows.append((record[0], features))
        vocabulary = []
        for column in columns:
            seen = {f for _, features in rows for f in features if f.startswith(column + ":")}
            vocabulary += sorted(seen)
        return rows, vocabulary

    user_rows, user_vocab = feature_lists(users, "u_id")
    item_rows, item_vocab = feature_lists(items, "i_id")
    dataset = Dataset()
    dataset.fit(users["u_id"], items["i_id"], user_features=user_vocab, item_features=item_vocab)
    triples = list(zip(interactions["user_id"], interactions["item_id"], interactions["weight"]))
    binary, weights = dataset.build_interactions(triples)
    return {
        "user_features": dataset.build_user_features(user_rows),
        "item_features": dataset.build_item_features(item_rows),
        "interactions": (binary.tocsr() > 0).astype(np.int32),
        "weights": weights.tocsr(),
    }


def _measure(side: str, data: Path, out: Path) -> dict[str, float]:
    """Run one side in this process: load the frames, build, save the matrices."""
    users = pd.read_parquet(data / "users.parquet")
    items = pd.read_parquet(data / "items.parquet")
    interactions = pd.read_parquet(data / "interactions.parquet")
    build = build_ours if side == "ours" else build_lightfm
    with peak_rss_mb() as memory:
        start = time.perf_counter()
        matrices = build(users, items, interactions)
        seconds = time.perf_counter() - start
    arrays: dict[str, Any] = {
        f"{k}_{part}": getattr(sp.csr_matrix(v), part)
        for k, v in matrices.items()
        for part in ("data", "indices", "indptr")
    }
    arrays |= {f"{k}_shape": np.array(v.shape) for k, v in matrices.items()}
    np.savez(out, **arrays)
    return {"seconds": seconds, "peak_mb": memory["peak_mb"]}


def _load(path: Path) -> dict[str, sp.csr_matrix]:
    arrays = np.load(path)
    names = {k.rsplit("_", 1)[0] for k in arrays.files}
    return {
        n: sp.csr_matrix(
            (arrays[f"{n}_data"], arrays[f"{n}_indices"], arrays[f"{n}_indptr"]), shape=tuple(arrays[f"{n}_shape"])
        )
        for n in names
    }


def run(size: BuilderSize = BuilderSize(), repeats: int = 3) -> dict[str, float]:
    """Time both sides ``repeats`` times (fresh processes), check identity, return median figures."""
    with tempfile.TemporaryDirectory(prefix="kdq-bench-") as tmp:
        data = Path(tmp)
        users, items, interactions = make_frames(size)
        users.to_parquet(data / "users.parquet")
        items.to_parquet(data / "items.parquet")
        interactions.to_parquet(data / "interactions.parquet")
        print(f"builder: {size.users:,} users, {size.items:,} items, {size.interactions:,} interactions")
        results: dict[str, list[dict[str, float]]] = {"ours": [], "lightfm": []}
        for _ in range(repeats):
            for side in results:
                out = data / f"{side}.npz"
                proc = subprocess.run(
                    [sys.executable, "-m", "kdq_lab.bench.builder", side, str(data), str(out)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        ours, theirs = _load(data / "ours.npz"), _load(data / "lightfm.npz")
        same = all(identical(ours[k], theirs[k]) for k in theirs)
    median = {
        side: {k: float(np.median([r[k] for r in runs])) for k in ("seconds", "peak_mb")}
        for side, runs in results.items()
    }
    figures = {
        "lightfm_seconds": median["lightfm"]["seconds"],
        "ours_seconds": median["ours"]["seconds"],
        "lightfm_peak_mb": median["lightfm"]["peak_mb"],
        "ours_peak_mb": median["ours"]["peak_mb"],
        "speedup": median["lightfm"]["seconds"] / median["ours"]["seconds"],
        "memory_ratio": median["ours"]["peak_mb"] / median["lightfm"]["peak_mb"],
        "identical": float(same),
    }
    print(f"  lightfm.data.Dataset : {figures['lightfm_seconds']:6.2f} s  peak {figures['lightfm_peak_mb']:7.0f} MB")
    print(f"  kdq_lab builder      : {figures['ours_seconds']:6.2f} s  peak {figures['ours_peak_mb']:7.0f} MB")
    print(
        f"  speed-up {figures['speedup']:.1f}x (target >= 4x), peak memory ratio {figures['memory_ratio']:.2f}"
        f" (target <= 0.6), matrices identical: {same}"
    )
    return figures


if __name__ == "__main__":
    side, data_dir, out_file = sys.argv[1:4]
    print(json.dumps(_measure(side, Path(data_dir), Path(out_file))))
