"""Small linear-algebra helpers shared by models, evaluation and curation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def unit_rows(features: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty)."""
    features = sp.csr_matrix(features, dtype=np.float64)
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ features)
