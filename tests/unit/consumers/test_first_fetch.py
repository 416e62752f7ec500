from consumers.first_fetch import FirstFetch
from consumers.lanes import Item, Lane, Lanes
from consumers.registry import Task
from jobpipe.envelope import Job
from jobpipe.topology import QueueSpec


def test_waits_for_every_partition_of_the_first_assignment():
    first = FirstFetch()
    assert not first.done  # no assignment yet
    first.assigned([("high", 0), ("low", 0)])
    first.seen({("low", 0)})
    assert not first.done  # high's first fetch is not in: low alone would take every draw
    first.seen({("high", 0)})
    assert first.done


def test_a_partition_revoked_before_its_first_fetch_is_not_waited_for():
    first = FirstFetch()
    first.assigned([("high", 0), ("low", 0)])
    first.seen({("low", 0)})
    first.forget([("high", 0)])
    assert first.done


def test_only_the_first_assignment_is_waited_for():
    first = FirstFetch()
    first.assigned([("high", 0)])
    first.seen({("high", 0)})
    first.assigned([("low", 0)])  # a later rebalance does not stop a running worker
    assert first.done


def test_an_empty_first_assignment_holds_nothing_back():
    first = FirstFetch()
    first.assigned([])
    assert first.done


def test_held_lanes_give_out_nothing_until_released():
    lane = Lane(QueueSpec("q"), 0, "q")
    lanes = Lanes([lane], buffer_max=100)
    item = Item("q", 0, 0, None, Job(id="1", queue="q", task="t"),
                Task("t", lambda ctx, args: None, False), lane)
    lanes.push(item)
    lanes.held = True
    assert lanes.next() is None
    lanes.held = False
    assert lanes.next() is item
