"""A stage process's garbage-collector tuning."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from jobpipe.gc_tuning import (
    GC_YOUNG_THRESHOLD,
    collect_young_less_often,
    freeze_startup_objects,
)


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_freezing_moves_what_lives_now_out_of_later_collections() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


@pytest.mark.usefixtures("restored_gc")
def test_garbage_is_collected_before_the_freeze_not_kept_forever() -> None:
    node = _Node()
    ref = weakref.ref(node)
    del node
    freeze_startup_objects()
    assert ref() is None


@pytest.mark.usefixtures("restored_gc")
def test_the_young_threshold_is_raised_never_lowered() -> None:
    gc.set_threshold(700, 10, 10)
    collect_young_less_often()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 10, 10)
    collect_young_less_often()
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD * 2
