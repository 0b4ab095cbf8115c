"""Shared sparse helpers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kdq_lab.linalg import identical, unit_rows


def test_identical_ignores_index_order_only():
    a = sp.csr_matrix(np.array([[0, 2.0, 3.0], [1.0, 0, 0]]))
    shuffled = sp.csr_matrix((a.data[[1, 0, 2]], a.indices[[1, 0, 2]], a.indptr), shape=a.shape)
    assert identical(a, shuffled)
    assert shuffled.has_sorted_indices == 0, "the caller's matrix is left as it was"
    assert not identical(a, a.astype(np.float32)), "dtype"
    assert not identical(a, sp.csr_matrix(np.array([[0, 2.0, 3.5], [1.0, 0, 0]]))), "values"
    assert not identical(a, sp.csr_matrix(np.array([[0, 2.0, 3.0], [0, 1.0, 0]]))), "structure"
    assert not identical(a, sp.csr_matrix((2, 4))), "shape"


def test_unit_rows_keeps_empty_rows_empty():
    rows = unit_rows(sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0]])))
    np.testing.assert_allclose(rows.toarray(), [[0.6, 0.8], [0.0, 0.0]])
