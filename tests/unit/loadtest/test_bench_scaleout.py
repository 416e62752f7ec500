"""The scale-out bench picks one queue per primary by the hash slot of its tag."""

import pytest
from redis.crc import key_slot

from jobpipe import names
from jobpipe.errors import StackError
from loadtest.bench.scaleout import pick_queues, queue_slot

# How `redis-cli --cluster create` splits the slots over 3 primaries.
THREE_PRIMARIES = [[(0, 5460)], [(5461, 10922)], [(10923, 16383)]]


def test_a_queue_slot_is_the_slot_of_every_key_of_the_queue():
    for key in (names.ready_key("ns", "so7", 0), names.ready_key("other", "so7", 3, 1)):
        assert key_slot(key.encode()) == queue_slot("so7")


def test_each_primary_gets_a_queue_on_its_own_slots():
    queues = pick_queues(THREE_PRIMARIES)
    assert len(set(queues)) == 3
    for name, ranges in zip(queues, THREE_PRIMARIES, strict=True):
        assert any(lo <= queue_slot(name) <= hi for lo, hi in ranges)


def test_split_and_single_slot_ranges_are_honoured():
    target = queue_slot("so5")
    ranges = [[(target, target)], [(0, target - 1), (target + 1, 16383)]]
    assert pick_queues(ranges) == ["so5", "so0" if queue_slot("so0") != target else "so1"]


def test_a_primary_no_name_reaches_is_one_clear_error():
    with pytest.raises(StackError, match="no queue name"):
        pick_queues([[]])
