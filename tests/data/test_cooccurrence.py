"""ItemCF co-occurrence against hand-computed counts and cosines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from notellm.data.cooccurrence import cooccurrence, cosine, user_note_matrix


def test_counts_and_cosine_by_hand():
    # u1: a, b, b (repeat counts once)   u2: a, b, c   u3: c   (d: an event on a note outside the index)
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u2", "u3", "u3"],
            "note_id": ["a", "b", "b", "a", "b", "c", "c", "d"],
        }
    )
    x = user_note_matrix(events, {"a": 0, "b": 1, "c": 2})
    assert x.shape == (3, 3) and x.sum() == 6
    co, n_users = cooccurrence(x)
    assert n_users.tolist() == [2, 2, 2]
    assert co.toarray().tolist() == [[0, 2, 1], [2, 0, 1], [1, 1, 0]]
    # cos(a, b) = 2 / sqrt(2 * 2) = 1; cos(a, c) = 1 / sqrt(2 * 2) = 0.5
    np.testing.assert_allclose(cosine(co, n_users).toarray(), [[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]])


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="user_id"):
        user_note_matrix(pd.DataFrame({"note_id": ["a"]}), {"a": 0})
