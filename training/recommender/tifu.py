"""TIFU-KNN (Hu, He, Gao and Zhang, SIGIR 2020): time-decayed personal item frequencies,
blended with the same vectors of the customer's nearest neighbours.

A customer's vector is built from their baskets, oldest first: each basket's items count
`within_decay ** (baskets after it)`; the baskets are split into at most `groups` groups of
near-equal size (the most recent groups one basket larger when they do not divide evenly),
each group is averaged and counts `group_decay ** (groups after it)`, and the sum is divided
by the number of groups (the reference implementation's rule, followed here exactly). The
score of item i for customer u is

    alpha * v_u[i] + (1 - alpha) * mean of v_n[i] over u's `neighbours` nearest customers,

nearest by cosine of the vectors (the reference uses Euclidean distance, which makes
customers with few baskets, whose vectors are short, everyone's neighbours). "A Next Basket
Recommendation Reality Check" (Li et al., 2023) found it ahead of most deep models; its first
term is a strong repeat model and the second brings in what similar customers buy.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from inference.recommender.topk import top_k
from storewise.settings import TifuSettings
from training.recommender.sparse import keep_best_per_row

CHUNK = 1024


def basket_weights(basket_user: np.ndarray, settings: TifuSettings) -> np.ndarray:
    """Each basket's weight in its customer's vector (baskets sorted by customer, oldest first)."""
    n = len(basket_user)
    if not n:
        return np.zeros(0, np.float64)
    starts = np.flatnonzero(np.r_[True, basket_user[1:] != basket_user[:-1]])
    sizes = np.diff(np.r_[starts, n])
    count = np.repeat(sizes, sizes)  # baskets of the basket's customer
    position = np.arange(n) - np.repeat(starts, sizes)  # 0 = the customer's oldest
    groups = settings.groups
    base = np.maximum(count // groups, 1)
    extra = np.where(count >= groups, count - base * groups, 0)  # groups one basket larger
    small = groups - extra  # the first groups, of `base` baskets
    in_small = position < small * base
    group = np.where(count < groups, position, 0)
    group = np.where((count >= groups) & in_small, position // base, group)
    group = np.where((count >= groups) & ~in_small, small + (position - small * base) // (base + 1), group)
    group_size = np.where(count < groups, 1, np.where(in_small, base, base + 1))
    real_groups = np.minimum(count, groups)
    return (
        settings.within_decay ** (count - 1 - position)
        * settings.group_decay ** (groups - 1 - group)
        / (group_size * real_groups)
    )


def user_vectors(
    baskets: sp.csr_matrix, basket_user: np.ndarray, n_users: int, settings: TifuSettings
) -> sp.csr_matrix:
    """Users x items: the time-decayed item frequencies."""
    weights = basket_weights(basket_user, settings)
    spread = sp.csr_matrix(
        (weights, (basket_user, np.arange(len(basket_user)))), shape=(n_users, baskets.shape[0])
    )
    return sp.csr_matrix(spread @ baskets, dtype=np.float32)


def neighbour_pool(vectors: sp.csr_matrix, size: int) -> np.ndarray:
    """The customers neighbours are drawn from: all of them, or the `size` with the most
    items bought (a kNN over 100,000 customers would cost more than the rest of training)."""
    active = np.flatnonzero(np.diff(vectors.indptr) > 0)
    if len(active) <= size:
        return active
    counts = np.diff(vectors.indptr)[active]
    return np.sort(active[np.lexsort((active, -counts))[:size]])


# a chunk whose customers share items with more than this share of the neighbour pool is
# scored densely (a small catalogue bought often: the online-retail sample, 0.53); below
# it, sparsely (the large demo shop: 0.0004, 135x faster). Both give the same numbers.
DENSE_ABOVE = 0.05


def tifu_scores(
    vectors: sp.csr_matrix, users: np.ndarray, settings: TifuSettings, *, keep: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """For each of `users` (rows in that order), the best `keep` items by TIFU-KNN score,
    and by its neighbours' part alone among the items the user never bought (what the
    method suggests to explore); ties to the lower item."""
    full, explore = [], []
    setup = _neighbour_setup(vectors, settings)
    for chunk, similarity in _similarities(setup, users):
        if similarity.nnz > DENSE_ABOVE * similarity.shape[0] * similarity.shape[1]:
            scores, own = _dense_scores(setup, vectors, chunk, similarity, settings)
            full.append(best_entries(scores, keep))
            neighbours = scores - settings.alpha * own
            neighbours[own > 0] = 0
            explore.append(best_entries(neighbours, keep))
        else:
            sparse_scores, sparse_own = _sparse_scores(setup, vectors, chunk, similarity, settings)
            full.append(keep_best_per_row(sparse_scores, keep))
            rest = sp.csr_matrix(sparse_scores - settings.alpha * sparse_own)
            rest = rest - rest.multiply(sparse_own > 0)  # only items the customer never bought
            explore.append(keep_best_per_row(rest, keep))
    if not full:
        empty = sp.csr_matrix((0, vectors.shape[1]), dtype=np.float32)
        return empty, empty
    return sp.vstack(full, format="csr"), sp.vstack(explore, format="csr")


def tifu_dense(
    vectors: sp.csr_matrix, users: np.ndarray, settings: TifuSettings
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Dense TIFU-KNN scores for `users`, a chunk at a time, with the users' own vectors."""
    setup = _neighbour_setup(vectors, settings)
    for chunk, similarity in _similarities(setup, users):
        yield _dense_scores(setup, vectors, chunk, similarity, settings)


Setup = tuple[np.ndarray, sp.csr_matrix, sp.csc_matrix, sp.csr_matrix, int]


def _neighbour_setup(vectors: sp.csr_matrix, settings: TifuSettings) -> Setup:
    """The neighbour pool, every customer's unit vector, the pool's unit vectors
    (transposed) and raw vectors, and how many neighbours a customer gets."""
    pool = neighbour_pool(vectors, settings.neighbour_pool)
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    unit = sp.csr_matrix(sp.diags(1 / norms) @ vectors)
    return pool, unit, unit[pool].T.tocsc(), vectors[pool], min(settings.neighbours, len(pool))


def _similarities(setup: Setup, users: np.ndarray) -> Iterator[tuple[np.ndarray, sp.csr_matrix]]:
    """A chunk of users at a time: their cosines to the pool (sparse)."""
    _, unit, pool_unit, _, _ = setup
    for start in range(0, len(users), CHUNK):
        chunk = users[start : start + CHUNK]
        yield chunk, sp.csr_matrix(unit[chunk] @ pool_unit)


def _dense_scores(
    setup: Setup, vectors: sp.csr_matrix, chunk: np.ndarray, cosine: sp.csr_matrix, settings: TifuSettings
) -> tuple[np.ndarray, np.ndarray]:
    pool, _, _, pool_vectors, top = setup
    similarity = np.asarray(cosine.todense())
    similarity[pool[None, :] == chunk[:, None]] = -1  # not one's own neighbour
    nearest = top_k(similarity, top) if top else np.zeros((len(chunk), 0), np.int64)
    picked = np.take_along_axis(similarity, nearest, axis=1) > 0
    weights = sp.csr_matrix(
        (
            np.full(int(picked.sum()), 1.0 / max(top, 1), np.float32),
            (np.repeat(np.arange(len(chunk)), picked.sum(axis=1)), nearest[picked]),
        ),
        shape=(len(chunk), len(pool)),
    )
    own = vectors[chunk].toarray()
    neighbours = (weights @ pool_vectors).toarray()
    return (settings.alpha * own + (1 - settings.alpha) * neighbours).astype(np.float32), own


def _sparse_scores(
    setup: Setup, vectors: sp.csr_matrix, chunk: np.ndarray, cosine: sp.csr_matrix, settings: TifuSettings
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """`_dense_scores` kept sparse: the nearest neighbours are each row's best positive
    cosines (ties to the lower pool index, as `top_k` breaks them)."""
    pool, _, _, pool_vectors, top = setup
    similarity = sp.csr_matrix(cosine, copy=True)
    rows = np.repeat(np.arange(len(chunk)), np.diff(similarity.indptr))
    similarity.data[pool[similarity.indices] == chunk[rows]] = 0  # not one's own neighbour
    nearest = keep_best_per_row(similarity, top) if top else sp.csr_matrix(similarity.shape, dtype=np.float32)
    nearest.data[:] = 1.0 / max(top, 1)
    own = sp.csr_matrix(vectors[chunk], dtype=np.float32)
    neighbours = sp.csr_matrix(nearest @ pool_vectors, dtype=np.float32)
    return sp.csr_matrix(settings.alpha * own + (1 - settings.alpha) * neighbours, dtype=np.float32), own


def best_entries(scores: np.ndarray, keep: int) -> sp.csr_matrix:
    """Each row's `keep` best positive scores as a sparse matrix (ties to the lower item)."""
    best = top_k(scores, keep)
    values = np.take_along_axis(scores, best, axis=1)
    positive = values > 0
    return sp.csr_matrix(
        (values[positive], (np.repeat(np.arange(len(scores)), positive.sum(axis=1)), best[positive])),
        shape=scores.shape,
        dtype=np.float32,
    )
