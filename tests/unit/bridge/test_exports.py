"""``bridge.__all__`` lists exactly the public names."""

from __future__ import annotations

import types

import bridge


def test_all_matches_public_exports():
    # Submodules appear as attributes once anything imported them (bridge.cli
    # after a CLI test): they are rooms, not exports.
    public = {n for n, v in vars(bridge).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert set(bridge.__all__) == public
