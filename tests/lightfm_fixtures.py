"""Random LightFM models and interaction matrices for exactness tests (no training needed)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM


def random_model(n_user_features: int, n_item_features: int, d: int, seed: int, ties: bool = False) -> LightFM:
    """A LightFM model with random parameters; ``ties`` quantises them so many scores tie exactly."""
    rng = np.random.default_rng(seed)
    model = LightFM(no_components=d, random_state=seed)
    model._initialize(d, n_item_features, n_user_features)
    if ties:
        model.item_embeddings[:] = rng.integers(-2, 3, (n_item_features, d)) * 0.5
        model.user_embeddings[:] = rng.integers(-2, 3, (n_user_features, d)) * 0.25
        model.item_biases[:] = rng.integers(0, 2, n_item_features)
        model.user_biases[:] = 0
    else:
        model.item_embeddings[:] = rng.normal(0, 0.3, (n_item_features, d))
        model.user_embeddings[:] = rng.normal(0, 0.3, (n_user_features, d))
        model.item_biases[:] = rng.normal(0, 0.5, n_item_features)
        model.user_biases[:] = rng.normal(0, 0.1, n_user_features)
    return model


def random_interactions(n_users: int, n_items: int, n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    matrix = sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (rng.integers(0, n_users, n), rng.integers(0, n_items, n))),
        shape=(n_users, n_items),
    )
    matrix.data[:] = 1
    return matrix


def disjoint(test: sp.csr_matrix, train: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(test - test.multiply(train))
    out.eliminate_zeros()
    out.data[:] = 1
    return out.astype(np.float32)


def random_features(n: int, n_features: int, seed: int, identity: bool) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), 3)
    features = sp.csr_matrix(
        (rng.random(3 * n).astype(np.float32), (rows, rng.integers(0, n_features, 3 * n))), shape=(n, n_features)
    )
    if identity:
        features = sp.hstack([sp.identity(n, format="csr", dtype=np.float32), features], format="csr")
    return features.astype(np.float32)
