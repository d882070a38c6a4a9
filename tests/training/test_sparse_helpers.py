"""`keep_best_per_row`: each row's largest positive entries, ties cut by the lower column."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from training.recommender.sparse import keep_best_per_row


def test_each_row_keeps_its_largest_positive_entries_ties_to_the_lower_column() -> None:
    dense = np.array(
        [
            [0.0, 3.0, 1.0, 2.0, 2.0, 2.0],  # 3, then two of the three 2s: columns 3 and 4
            [5.0, -1.0, 0.0, 0.0, 0.0, 4.0],  # two positive entries only: both kept
            [1.0, 1.0, 1.0, 1.0, 0.0, 0.0],  # all tied: the three lowest columns
            [-2.0, -3.0, 0.0, 0.0, 0.0, 0.0],  # nothing positive: an empty row
        ],
        dtype=np.float32,
    )
    kept = keep_best_per_row(sp.csr_matrix(dense), 3).toarray()
    expected = np.array(
        [
            [0, 3, 0, 2, 2, 0],
            [5, 0, 0, 0, 0, 4],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(kept, expected)


def test_unsorted_indices_give_the_same_cut_and_come_back_sorted() -> None:
    # the row [0, 3, 1, 2, 2, 2] stored with its columns in reverse order, as a product can
    # leave them: the tie at 2 still goes to columns 3 and 4
    columns = np.array([5, 4, 3, 2, 1])
    values = np.array([2.0, 2.0, 2.0, 1.0, 3.0], dtype=np.float32)
    matrix = sp.csr_matrix((values, columns, np.array([0, 5])), shape=(1, 6))
    matrix.has_sorted_indices = False
    kept = keep_best_per_row(matrix, 3)
    assert kept.indices.tolist() == [1, 3, 4]
    assert kept.data.tolist() == [3.0, 2.0, 2.0]
