"""Sparse-matrix helpers shared by the item-item models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def keep_best_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Each row's `keep` largest positive entries; ties go to the lower column, so the cut
    is the same on every run."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.data[matrix.data <= 0] = 0
    matrix.eliminate_zeros()
    matrix.sort_indices()
    lengths = np.diff(matrix.indptr)
    if lengths.max(initial=0) <= keep:
        return matrix
    mask = np.ones(matrix.nnz, bool)
    for row in np.flatnonzero(lengths > keep):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        order = np.lexsort((matrix.indices[start:stop], -matrix.data[start:stop]))
        mask[start + order[keep:]] = False
    matrix.data[~mask] = 0
    matrix.eliminate_zeros()
    return matrix
