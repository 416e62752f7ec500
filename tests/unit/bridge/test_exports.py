"""``bridge.__all__`` lists exactly the public names."""

from __future__ import annotations

import bridge


def test_all_matches_public_exports():
    public = {n for n in dir(bridge) if not n.startswith("_")}
    modules = {"backlog", "batch", "dead", "delayed", "fair", "lag", "reaper", "relay",
               "service", "sources", "take", "wake"}
    assert set(bridge.__all__) == public - modules
