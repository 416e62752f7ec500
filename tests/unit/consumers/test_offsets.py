from consumers.offsets import OffsetTracker, PartitionOffsets


def test_committable_is_one_past_highest_contiguous_completed():
    part = PartitionOffsets()
    for offset in range(5):
        part.add(offset)
    part.complete(1)
    part.complete(2)
    assert part.committable is None  # 0 still runs: nothing may be committed
    part.complete(0)
    assert part.committable == 3
    part.complete(4)
    assert part.committable == 3  # 3 holds the commit
    part.complete(3)
    assert part.committable == 5
    assert part.in_flight == 0


def test_gaps_between_fetched_offsets_do_not_block():
    part = PartitionOffsets()
    for offset in (10, 11, 15):
        part.add(offset)
    for offset in (15, 10, 11):
        part.complete(offset)
    assert part.committable == 16


def test_tracker_reports_only_moved_partitions_and_forgets_dropped_ones():
    tracker = OffsetTracker()
    tracker.add("t", 0, 0)
    tracker.add("t", 1, 7)
    tracker.complete("t", 0, 0)
    assert tracker.take_committable() == {("t", 0): 1}
    assert tracker.take_committable() == {}
    tracker.drop("t", 1)
    tracker.complete("t", 1, 7)  # a late completion of a revoked partition is ignored
    assert tracker.take_committable() == {}
    assert tracker.in_flight() == 0
