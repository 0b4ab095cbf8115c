"""Small linear-algebra helpers shared by models, evaluation and curation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def unit_rows(features: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty)."""
    features = sp.csr_matrix(features, dtype=np.float64)
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ features)


def identical(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    """Whether two sparse matrices are the same: shape, dtype, structure and values (index order aside)."""
    a, b = sp.csr_matrix(a, copy=True), sp.csr_matrix(b, copy=True)
    a.sort_indices()
    b.sort_indices()
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )
