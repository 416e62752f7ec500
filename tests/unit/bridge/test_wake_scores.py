"""The due time read from a raw ``ZRANGE key 0 0 WITHSCORES`` reply, in either protocol."""

from __future__ import annotations

import pytest

from bridge.wake import _first_score


@pytest.mark.parametrize(("reply", "due_ms"), [
    ([b"job", b"1796531405233"], 1796531405233),  # RESP2: member, score
    ([[b"job", 1796531405233.0]], 1796531405233),  # RESP3: one [member, score] pair
    ([], None),  # an empty (or missing) delayed set
])
def test_the_score_of_each_reply_shape(reply, due_ms):
    assert _first_score(reply) == due_ms
