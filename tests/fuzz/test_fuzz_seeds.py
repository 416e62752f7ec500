"""The fuzz target's seeds run in the ordinary suite, with or without atheris."""

from __future__ import annotations

import pytest

from tests.fuzz.fuzz_envelope import SEEDS, check_one


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_seed_passes_the_contract(seed):
    check_one(seed)
