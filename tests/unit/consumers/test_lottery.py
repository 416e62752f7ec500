import random
from collections import Counter

from consumers.lottery import Lottery, lane_weight
from jobpipe.topology import QueueSpec


def test_shares_follow_weights_within_ten_percent():
    lottery: Lottery[str] = Lottery(random.Random(7))
    candidates = [("high", 6), ("mid", 3), ("low", 1)]
    wins = Counter(lottery.draw(candidates) for _ in range(20_000))
    for name, weight in candidates:
        expected = weight / 10
        assert abs(wins[name] / 20_000 - expected) <= 0.1 * expected
    assert wins["low"] > 0


def test_only_lanes_with_work_take_part():
    lottery: Lottery[str] = Lottery(random.Random(1))
    assert lottery.draw([]) is None
    assert lottery.draw([("low", 1)]) == "low"


def test_lane_weight_is_queue_weight_times_level_weight():
    spec = QueueSpec("q", weight=3, priorities=(10, 2))
    assert lane_weight(spec, 0) == 30
    assert lane_weight(spec, 1) == 6
