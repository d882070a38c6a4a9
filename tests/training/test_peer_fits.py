"""The test weeks' peers hand the hybrid what they fitted that it fits too (`PeerFits`):
EASE on bought/not-bought, BM25 on counts and repurchase timing's scores. Taken, they must
be exactly what the hybrid would have computed itself, or the run's figures would depend on
which process fitted the peers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from storewise import columns as c
from storewise.settings import AlsSettings, ComponentSettings, PeerSettings, RecommenderSettings
from tests.style import TZ, style_data, style_shop
from training.recommender.comparison import PeerFits, hybrid_arrays
from training.recommender.hybrid import fit_hybrid
from training.recommender.models import ItemKnnBm25
from training.recommender.trainer import peers

SETTINGS = RecommenderSettings(
    components=ComponentSettings(
        ease_regularization=5, bm25_neighbours=10, item_neighbours=10, max_ease_items=100
    ),
    peers=PeerSettings(cooccurrence_neighbours=10, als=AlsSettings(factors=4, iterations=5, seed=3)),
)
COMPONENTS = {"ease", "bm25", "due", "buy_again"}


def same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    a.sort_indices()
    b.sort_indices()
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def test_the_peers_fits_are_the_hybrids_own_and_it_takes_them() -> None:
    tables = style_shop()
    # some customers buy an item again, so that counts are not bought/not-bought and
    # repurchase timing has repeats to learn from
    again = pd.DataFrame(
        [
            (f"r{n}{k}", f"a{n}", "V1", 1, 30.0, pd.Timestamp("2026-02-01", tz=TZ) + pd.Timedelta(days=7 * k))
            for n in range(1, 12)
            for k in range(n % 3 + 1)
        ],
        columns=[c.ORDER_ID, c.CUSTOMER_ID, c.ITEM_ID, c.QUANTITY, c.UNIT_PRICE, c.ORDERED_AT],
    ).assign(**{c.RETURNED: False})
    tables[c.ORDERS] = pd.concat([tables[c.ORDERS], again], ignore_index=True)
    data = style_data(tables)
    fits: dict[str, sp.csr_matrix] = {}
    for peer in peers(data.n_items, SETTINGS):
        fits.update(hybrid_arrays(peer.fit(data)))
    assert set(fits) == {"ease", "bm25", "due"}
    assert set(PeerFits(**fits).arrays()) == {"ease", "bm25", "due"}
    assert PeerFits(ease=fits["ease"]).arrays() == {"ease": fits["ease"]}

    own = fit_hybrid(data, tables[c.ORDERS], None, SETTINGS, components=COMPONENTS)
    taken = fit_hybrid(data, tables[c.ORDERS], None, SETTINGS, components=COMPONENTS, fitted=fits)
    for name in ("ease", "bm25"):
        assert taken.similarity[name] is fits[name]
        assert same(taken.similarity[name], own.similarity[name]), name
    assert taken.histories["due"] is fits["due"]
    assert same(taken.histories["due"], own.histories["due"])
    # the binary BM25 peer is not the hybrid's: had it been taken, the matrices would differ
    binary = ItemKnnBm25(SETTINGS.components, source="purchases", binary=True).fit(data)
    assert not same(binary.similarity, own.similarity["bm25"])
    # and the answers are the same
    users = np.arange(data.n_users)
    for name in ("ease", "bm25", "due"):
        np.testing.assert_array_equal(
            taken.component_scores(name, users), own.component_scores(name, users), err_msg=name
        )
