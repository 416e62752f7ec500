"""A take or ack whose reply never came (Redis busy past the socket timeout) loses
nothing: every job still reaches Kafka (duplicates allowed), and no job not yet
acknowledged by Kafka leaves Redis."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bridge import Bridge
from bridge.batch import Source
from bridge.reaper import Reaper
from bridge.take import OutcomeUnknown, Taker
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import redis_client as make_client
from jobpipe.settings import Settings
from tests.integration.bridge.busy import busy
from tests.integration.bridge.jobs import consume, fill, id_counts
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]
BATCH = 10
JOBS = 5 * BATCH
# Shorter than the busy spell of tests.integration.bridge.busy: replies come too late.
SHORT_TIMEOUT_S = 0.3


def _settings(make_settings) -> Settings:
    return make_settings(queues={"q": {"partitions": 1, "shards": 1}},
                         bridge={"batch_size": BATCH, "max_batches_in_flight": 2},
                         redis={"socket_timeout_s": SHORT_TIMEOUT_S})


class BusyOnce(Bridge):
    """A real bridge whose first take (or ack) is sent while its Redis is busy."""

    def __init__(self, settings: Settings, during: str) -> None:
        super().__init__(settings, bridge_id="busy")
        self.during = during
        self.first_id = self.bridge_id
        self.busied = False

    def _start(self) -> None:
        super()._start()
        taker = self._taker
        real = getattr(taker, self.during)
        ready = names.ready_key(self.settings.namespace, "q", 0, 0)

        def when_busy(*args):
            if self.busied:
                return real(*args)
            self.busied = True
            with busy(self._client, ready):
                return real(*args)

        setattr(taker, self.during, when_busy)


@pytest.mark.parametrize("during", ["take_lists", "ack"])
def test_a_take_or_ack_whose_reply_is_lost_loses_no_job(
        make_settings, redis_client, kafka_cleanup, during):
    settings = _settings(make_settings)
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", JOBS)
    bridge = BusyOnce(settings, during)
    assert bridge.run_until_idle(timeout_s=120)
    assert bridge.busied
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                               expect=len(ids)))
    lost = set(ids) - set(counts)
    assert not lost, f"{len(lost)} of {len(ids)} jobs never reached Kafka"
    # The bridge knew the outcome was unknown: it went on under a new id.
    assert bridge.bridge_id != bridge.first_id


def _taker(settings: Settings, client, bridge_id: str) -> tuple[Taker, Source]:
    ns = settings.namespace
    Reaper(client, ns, [("q", None)], bridge_id, timeout_s=10.0).register()
    key = names.ready_key(ns, "q", 0, 0)
    return Taker(client, bridge_id, ns), Source(
        "q", key, names.inflight_list_key(bridge_id, key), names.main_topic(ns, "q"))


def _held(client, settings: Settings, source: Source) -> list[bytes]:
    return client.lrange(source.key, 0, -1) + client.lrange(source.inflight, 0, -1)


def test_an_ack_whose_reply_is_lost_runs_at_most_once(make_settings, redis_client):
    """Acks trim by count: run twice, one trims a batch Kafka never acknowledged
    (redis-py's cluster client re-ran it by itself)."""
    settings = _settings(make_settings)
    fill(redis_client, settings, "q", 3 * BATCH)
    client = make_client(settings.redis, at_most_once=True)  # as the bridge's
    try:
        taker, source = _taker(settings, client, "acker.0001")
        taker.take_lists([source], BATCH)
        unacked: Sequence[bytes] = taker.take_lists([source], BATCH)[0]
        with busy(redis_client, source.key), pytest.raises(OutcomeUnknown):
            taker.ack([(source, BATCH, [])])
        held = _held(redis_client, settings, source)
        missing = [raw for raw in unacked if raw not in held]
        assert not missing, f"{len(missing)} jobs Kafka never acknowledged left Redis"
    finally:
        client.close()
