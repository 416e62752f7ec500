import random
from collections import Counter

from consumers.lanes import Item, Lane, Lanes
from consumers.registry import Task
from jobpipe.envelope import Job
from jobpipe.topology import QueueSpec

TASK = Task("t", lambda ctx, args: None, False)


def _item(lane: Lane, offset: int, key: str | None = None) -> Item:
    job = Job(id=str(offset), queue=lane.spec.name, task="t", key=key)
    return Item(lane.topic, 0, offset, None, job, TASK, lane)


def test_saturated_lanes_are_served_by_weight_and_low_is_not_starved():
    high = Lane(QueueSpec("high", weight=9), 0, "high")
    low = Lane(QueueSpec("low", weight=1), 0, "low")
    lanes = Lanes([high, low], buffer_max=10**6, rng=random.Random(3))
    for i in range(20_000):
        lanes.push(_item(high, i))
        lanes.push(_item(low, i))
    served = Counter(lanes.next().lane.topic for _ in range(10_000))
    assert abs(served["high"] / 10_000 - 0.9) <= 0.09
    assert served["low"] > 0


def test_ordered_lane_holds_a_busy_key_until_release():
    lane = Lane(QueueSpec("q", ordered=True), 0, "q")
    lanes = Lanes([lane], buffer_max=100)
    first, second, other = _item(lane, 0, "k"), _item(lane, 1, "k"), _item(lane, 2, "z")
    for item in (first, second, other):
        lanes.push(item)
    assert lanes.next() is first
    assert lanes.next() is other  # second waits behind first
    assert lanes.next() is None
    lanes.release(first)
    assert lanes.next() is second


def test_full_lane_reports_itself_and_recovers_at_half():
    lane = Lane(QueueSpec("q"), 0, "q")
    lanes = Lanes([lane], buffer_max=4)
    for i in range(4):
        lanes.push(_item(lane, i))
    assert lanes.changed
    assert lanes.full_topics() == {"q"}
    lanes.next()
    lanes.next()
    assert lanes.changed
    assert lanes.full_topics() == set()
