"""How many take calls the bridge makes: one per queue for all its lists, none
for a list a take left empty until something rouses the rotation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bridge.batch import Source
from bridge.reaper import Reaper
from bridge.sources import Rotation
from bridge.take import Taker
from jobpipe import names
from jobpipe.settings import Settings
from jobpipe.topology import shard_for
from tests.integration.bridge.jobs import fill, make_job, push
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]
BRIDGE = "takes.0001"
BATCH = 10


class CountedTaker:
    """The real take script, counting its calls (each call is one round trip)."""

    def __init__(self, settings: Settings, client, queue: str) -> None:
        ns = settings.namespace
        Reaper(client, ns, [(queue, None)], BRIDGE, timeout_s=10.0).register()
        self.taker = Taker(client, BRIDGE, ns)
        self.calls = 0

    def __call__(self, sources: Sequence[Source], n: int) -> list[list[bytes]]:
        self.calls += 1
        return self.taker.take_lists(sources, n)


def _setup(make_settings, redis_client, shards: int = 4):
    settings = make_settings(queues={"q": {"partitions": 1, "shards": shards}})
    take = CountedTaker(settings, redis_client, "q")
    rotation = Rotation(redis_client, settings.namespace, settings.topology.select(["q"]),
                        BRIDGE, BATCH)
    return settings, take, rotation


def _shard_push(client, settings: Settings, shard: int, n: int) -> None:
    """Push ``n`` jobs onto one shard (a key that hashes there)."""
    key = next(k for k in (f"k{i}" for i in range(1000))
               if shard_for(k.encode(), 4, 0) == shard)
    push(client, settings, (make_job("q", key=key) for _ in range(n)))


def allow_all(_spec) -> bool:
    return True


def test_a_lone_job_costs_one_take_call_and_an_empty_queue_none(make_settings, redis_client):
    settings, take, rotation = _setup(make_settings, redis_client)
    _shard_push(redis_client, settings, 2, 1)
    got = rotation.take_next(take, allow_all, room=8)
    assert [len(items) for _, items in got] == [1]
    assert take.calls == 1
    assert not rotation.may_hold_jobs
    assert rotation.take_next(take, allow_all, room=8) == []
    assert take.calls == 1  # every list was left empty: no call


def test_a_list_left_empty_is_taken_again_only_after_rouse(make_settings, redis_client):
    settings, take, rotation = _setup(make_settings, redis_client)
    assert rotation.take_next(take, allow_all, room=8) == []
    fill(redis_client, settings, "q", 3)
    assert rotation.take_next(take, allow_all, room=8) == []  # no wake-up yet
    rotation.rouse()
    got = rotation.take_next(take, allow_all, room=8)
    assert sum(len(items) for _, items in got) == 3
    assert take.calls == 2


def test_a_list_that_gave_a_full_batch_is_taken_again(make_settings, redis_client):
    settings, take, rotation = _setup(make_settings, redis_client)
    _shard_push(redis_client, settings, 1, BATCH + 1)
    first = rotation.take_next(take, allow_all, room=8)
    assert [len(items) for _, items in first] == [BATCH]
    assert rotation.may_hold_jobs
    second = rotation.take_next(take, allow_all, room=8)
    assert [len(items) for _, items in second] == [1]
    assert not rotation.may_hold_jobs


def test_the_inflight_room_bounds_the_batches_of_one_call(make_settings, redis_client):
    settings, take, rotation = _setup(make_settings, redis_client)
    for shard in range(4):
        _shard_push(redis_client, settings, shard, 2)
    first = rotation.take_next(take, allow_all, room=3)
    assert len(first) == 3
    second = rotation.take_next(take, allow_all, room=3)
    assert len(second) == 1
    assert {s.key for s, _ in first + second} == {
        names.ready_key(settings.namespace, "q", shard) for shard in range(4)}


def test_one_ack_call_trims_several_lists_and_dead_lists_their_records(
        make_settings, redis_client):
    settings, take, rotation = _setup(make_settings, redis_client)
    for shard in range(4):
        _shard_push(redis_client, settings, shard, 3)
    got = rotation.take_next(take, allow_all, room=8)
    assert len(got) == 4
    take.taker.ack([(got[0][0], 3, [b"dead-a"]), (got[1][0], 2, [b"dead-b", b"dead-c"])])
    lengths = [redis_client.llen(source.inflight) for source, _ in got]
    assert lengths == [0, 1, 3, 3]
    assert redis_client.llen(names.dead_key(settings.namespace, "q")) == 3
