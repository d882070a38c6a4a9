"""Two item-item relations for discovery that co-purchase does not see directly.

- `names`: items whose names and tags share rare words (TF-IDF cosine over the catalogue's
  tags). In a wholesale gift shop the same design comes in several products and colours
  ("JUMBO BAG RED RETROSPOT", "JUMBO BAG PINK POLKADOT"); a customer who stocks one often
  takes the next. It depends on the catalogue's tags only, so each process computes it once
  per catalogue (`cached_name_similarity`): a run's folds and final fit share it.
- `next`: what customers bought for the first time in the basket after one holding item i
  (sequence, not mere co-occurrence), cosine-normalized like co-occurrence; a customer's
  latest baskets times it suggest their likely next new items.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

from training.recommender.data import TrainData
from training.recommender.sparse import keep_best_per_row

CHUNK = 2048


# this process's name similarities by catalogue (`cached_name_similarity`), latest used last
_NAME_SIMILARITIES: OrderedDict[str, sp.csr_matrix] = OrderedDict()
NAME_SIMILARITIES_KEPT = 4  # a run uses two catalogues: the whole one and the test weeks' at their start


def cached_name_similarity(
    item_features: sp.csr_matrix, feature_names: list[str], neighbours: int
) -> sp.csr_matrix:
    """Items x items: TF-IDF cosine of the items' tags (words of the name), each row's
    `neighbours` most similar items, the item itself left out. Computed once per catalogue
    in this process, whichever cutoff's data asks: it reads only the items' tags (3.3 s on
    the large demo shop's 20,000 items, needed by every fold and the final fit, in either
    process of a run). Keyed by the tags
    themselves (which items carry which words) and `neighbours`: the only inputs, so two
    catalogues share an entry only when their answers are the same."""
    return name_similarity_entry(item_features, feature_names, neighbours)[1]


def name_similarity_entry(
    item_features: sp.csr_matrix, feature_names: list[str], neighbours: int
) -> tuple[str, sp.csr_matrix]:
    """`cached_name_similarity` with its key in the cache: for the other process to keep too
    (`keep_name_similarity`)."""
    tags = _tags(item_features, feature_names)
    digest = hashlib.blake2b(digest_size=16)
    for part in (np.array([*tags.shape, neighbours], np.int64), tags.indptr, tags.indices):
        digest.update(np.ascontiguousarray(part, np.int64).tobytes())
    key = digest.hexdigest()
    if key not in _NAME_SIMILARITIES:
        keep_name_similarity((key, _tag_similarity(tags, neighbours)))
    _NAME_SIMILARITIES.move_to_end(key)
    return key, _NAME_SIMILARITIES[key]


def keep_name_similarity(entry: tuple[str, sp.csr_matrix]) -> None:
    """A `name_similarity_entry` computed elsewhere, in this process's cache."""
    key, similarity = entry
    _NAME_SIMILARITIES[key] = similarity
    _NAME_SIMILARITIES.move_to_end(key)
    while len(_NAME_SIMILARITIES) > NAME_SIMILARITIES_KEPT:
        _NAME_SIMILARITIES.popitem(last=False)


def _tags(item_features: sp.csr_matrix, feature_names: list[str]) -> sp.csr_matrix:
    """Items x tag words: 1 where the item's name has the word (no columns without tags)."""
    tag_columns = [i for i, name in enumerate(feature_names) if name.startswith("tag=")]
    return sp.csr_matrix(item_features[:, tag_columns] > 0, dtype=np.float32)


def _tag_similarity(tags: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """`cached_name_similarity` of the items' `_tags`."""
    n_items = tags.shape[0]
    if not tags.shape[1]:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    document_frequency = np.asarray(tags.sum(axis=0)).ravel()
    idf = np.log((1 + n_items) / (1 + document_frequency)) + 1
    weighted = sp.csr_matrix(tags @ sp.diags(idf.astype(np.float32)))
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    unit = sp.csr_matrix(sp.diags((1 / norms).astype(np.float32)) @ weighted)
    return _top_similar(unit, unit.T.tocsc(), neighbours)


def _top_similar(rows: sp.csr_matrix, columns: sp.csc_matrix, neighbours: int) -> sp.csr_matrix:
    """rows @ columns, each row cut to its `neighbours` best entries (diagonal removed),
    computed in chunks so a large catalogue never needs its full items x items product."""
    parts = []
    for start in range(0, rows.shape[0], CHUNK):
        block = sp.csr_matrix(rows[start : start + CHUNK] @ columns)
        own_row = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr)) + start
        block.data[block.indices == own_row] = 0  # the item itself
        parts.append(keep_best_per_row(block, neighbours))
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix(rows.shape[:1] * 2, dtype=np.float32)


def next_basket_similarity(data: TrainData, neighbours: int) -> sp.csr_matrix:
    """Items x items: customers who bought j for the first time in the basket right after
    one holding i, cosine-normalized by how many baskets hold i and j."""
    same_user = data.basket_user[1:] == data.basket_user[:-1]
    earlier = np.flatnonzero(same_user)
    if not len(earlier):
        return sp.csr_matrix((data.n_items, data.n_items), dtype=np.float32)
    baskets = data.baskets
    first_time = first_purchases(data)[earlier + 1]
    counts = sp.csr_matrix(baskets[earlier].T @ first_time, dtype=np.float32)
    frequency = np.sqrt(np.asarray(baskets.sum(axis=0)).ravel()).astype(np.float32)
    frequency[frequency == 0] = 1
    cosine = sp.csr_matrix(sp.diags(1 / frequency) @ counts @ sp.diags(1 / frequency))
    cosine.setdiag(0)
    return keep_best_per_row(cosine, neighbours)


def first_purchases(data: TrainData) -> sp.csr_matrix:
    """Baskets x items: 1 where the basket holds an item its customer never bought before."""
    lines = data.baskets.tocoo()
    key = data.basket_user[lines.row].astype(np.int64) * data.n_items + lines.col
    order = np.lexsort((lines.row, key))  # baskets are in time order within a customer
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    rows, cols = lines.row[order][first], lines.col[order][first]
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=data.baskets.shape)


def latest_baskets(data: TrainData, baskets: int) -> sp.csr_matrix:
    """Users x items: the items of each customer's last `baskets` baskets, the latest
    counting 1, each earlier one half as much."""
    n = len(data.basket_user)
    if not n:
        return sp.csr_matrix((data.n_users, data.n_items), dtype=np.float32)
    stops = np.r_[np.flatnonzero(data.basket_user[1:] != data.basket_user[:-1]) + 1, n]
    last_of_user = np.repeat(stops, np.diff(np.r_[0, stops]))
    after = last_of_user - 1 - np.arange(n)  # baskets after this one, same customer
    keep = after < baskets
    spread = sp.csr_matrix(
        ((0.5 ** after[keep]).astype(np.float32), (data.basket_user[keep], np.flatnonzero(keep))),
        shape=(data.n_users, n),
    )
    return sp.csr_matrix(spread @ data.baskets, dtype=np.float32)
