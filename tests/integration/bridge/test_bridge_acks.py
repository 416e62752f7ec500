"""The ack of several queues at once: no SCRIPT EXISTS first, and a Redis that lost its
scripts (SCRIPT FLUSH, as after a restart or a fail-over) still acks each queue
exactly once: no job lost, none acked twice."""

from __future__ import annotations

import pytest

from bridge.batch import Source
from bridge.reaper import Reaper
from bridge.take import Taker
from jobpipe import names
from jobpipe.settings import Settings
from tests.integration.bridge.jobs import fill
from tests.redis_modes import BOTH, SINGLE

pytestmark = [pytest.mark.integration, BOTH]
BRIDGE = "acks.0001"
QUEUES = ("a", "b", "c")
BATCH = 3


def _taker(settings: Settings, client) -> Taker:
    ns = settings.namespace
    Reaper(client, ns, [(q, None) for q in QUEUES], BRIDGE, timeout_s=10.0).register()
    return Taker(client, BRIDGE, ns)


def _source(settings: Settings, queue: str) -> Source:
    ns = settings.namespace
    key = names.ready_key(ns, queue, 0)
    return Source(queue, key, names.inflight_list_key(BRIDGE, key),
                  names.main_topic(ns, queue))


def _two_batches_each(settings: Settings, client, taker: Taker) -> dict[str, list[bytes]]:
    """Every queue's in-flight list holds two batches; the second batch of each."""
    second = {}
    for q in QUEUES:
        fill(client, settings, q, 2 * BATCH)
        taker.take_lists([_source(settings, q)], BATCH)
        second[q] = taker.take_lists([_source(settings, q)], BATCH)[0]
    return second


def _script_calls(client) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("evalsha", "eval", "script|exists", "script|load")}


def test_an_ack_of_several_queues_after_a_script_flush_acks_each_once(
        make_settings, redis_client):
    settings = make_settings(queues={q: {"partitions": 1, "shards": 1} for q in QUEUES})
    taker = _taker(settings, redis_client)
    second = _two_batches_each(settings, redis_client, taker)
    redis_client.script_flush()  # every EVALSHA of the ack pipeline meets NOSCRIPT
    taker.ack([(_source(settings, q), BATCH, []) for q in QUEUES])
    for q in QUEUES:
        # Acked once: the first batch is gone and the second still in flight.
        # Twice would have trimmed the second too; never, left both.
        inflight = redis_client.lrange(_source(settings, q).inflight, 0, -1)
        assert sorted(inflight) == sorted(second[q]), q


def test_an_ack_of_several_queues_asks_no_script_exists(
        make_settings, redis_client, redis_mode):
    if redis_mode != SINGLE:
        pytest.skip("commandstats are per node; a cluster pipeline sends EVAL")
    settings = make_settings(queues={q: {"partitions": 1, "shards": 1} for q in QUEUES})
    taker = _taker(settings, redis_client)
    _two_batches_each(settings, redis_client, taker)  # the scripts are loaded by now
    before = _script_calls(redis_client)
    taker.ack([(_source(settings, q), BATCH, []) for q in QUEUES])
    after = _script_calls(redis_client)
    # No code of jobpipe asks SCRIPT EXISTS any more: none at all, from anyone.
    assert after["script|exists"] == before["script|exists"]
    assert after["evalsha"] - before["evalsha"] >= len(QUEUES)
