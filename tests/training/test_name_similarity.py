"""Items whose names share rare words (`relations.cached_name_similarity`), on a catalogue small
enough to work out by hand."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp

from training.recommender import relations
from training.recommender.relations import cached_name_similarity

NAMES = ["jumbo bag red", "jumbo bag pink", "mug red", "lamp"]


def tag_matrix() -> tuple[sp.csr_matrix, list[str]]:
    words = sorted({word for name in NAMES for word in name.split()})
    rows = [[1.0 if word in name.split() else 0.0 for word in words] for name in NAMES]
    return sp.csr_matrix(np.array(rows, np.float32)), [f"tag={word}" for word in words]


def expected_cosine() -> np.ndarray:
    """TF-IDF (idf = log((1 + n) / (1 + df)) + 1) cosine, worked out densely."""
    tags, _ = tag_matrix()
    dense = tags.toarray()
    idf = np.log((1 + len(NAMES)) / (1 + dense.sum(axis=0))) + 1
    weighted = dense * idf
    unit = weighted / np.linalg.norm(weighted, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, 0)
    return cosine


def test_names_sharing_rare_words_are_neighbours_and_an_item_is_not_its_own() -> None:
    tags, names = tag_matrix()
    similar = cached_name_similarity(tags, names, neighbours=10).toarray()
    np.testing.assert_allclose(similar, expected_cosine(), rtol=1e-5, atol=1e-7)
    assert not similar.diagonal().any()
    assert similar[0].argmax() == 1  # "jumbo bag" twice outweighs "red"
    assert not similar[3].any()  # the lamp shares no word


def test_each_row_keeps_its_best_neighbours_also_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    tags, names = tag_matrix()
    monkeypatch.setattr(relations, "CHUNK", 3)  # rows in two chunks
    # computed here, not answered from the cache an unchunked computation may have filled
    monkeypatch.setattr(relations, "_NAME_SIMILARITIES", OrderedDict())
    similar = cached_name_similarity(tags, names, neighbours=1).toarray()
    expected = expected_cosine()
    for row in range(3):
        assert np.count_nonzero(similar[row]) == 1
        assert similar[row].argmax() == expected[row].argmax()
    assert not similar.diagonal().any()
