"""The take sent ahead of the idle wait (bridge.wake, bridge.service).

A bridge of one plain queue sends its take script behind the wait's
``BZPOPMIN``: Redis runs it as the wait ends, so a job that wakes the bridge is
taken in that round trip. These tests hold the mechanism to what a take on the
bridge's own connection promises: what it took is known before any other take,
a fence still fences, a lost reply is an unknown outcome, a lost script takes
nothing, and a bridge woken by pushes takes no job twice and loses none.

The ack of what Kafka took rides first in the same write; the tests hold it to
what an ack on the bridge's own connection promises, in the same ways.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import Bridge, service
from bridge.reaper import Reaper
from bridge.sources import ready_sources
from bridge.take import Fenced, OutcomeUnknown, Taker
from bridge.wake import NOT_SENT, Waker
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import node_client
from jobpipe.envelope import decode
from jobpipe.settings import Settings
from tests.integration.bridge.busy import busy
from tests.integration.bridge.jobs import consume, fill, id_counts
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]
BRIDGE = "ahead.0001"
BATCH = 10
LONGEST_S = 10.0
WITHIN_S = 2.0  # five times shorter than a wait that nothing ends
WAIT_NAME = "ahead-test"


@pytest.fixture
def reports_within_the_flush(monkeypatch) -> None:
    """An ack rides in the next wait when Kafka's reports came within the trickle's
    flush (50 ms), which a busy CI host can miss. The flush returns with the last
    report, so a longer bound changes nothing but that: every report comes in it."""
    monkeypatch.setattr(service, "TRICKLE_FLUSH_S", 10.0)


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings(queues={"q": {"partitions": 1}})


@pytest.fixture
def waker(settings: Settings, redis_client) -> Iterator[Waker]:
    w = Waker(redis_client, settings.namespace, settings.topology.select(["q"]), WAIT_NAME)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def taker(settings: Settings, redis_client) -> Taker:
    ns = settings.namespace
    Reaper(redis_client, ns, [("q", None)], BRIDGE, timeout_s=30.0).register()
    t = Taker(redis_client, BRIDGE, ns)
    # Loads both scripts, as a bridge's first take and ack on its own connection do.
    t.ack(_taken_acks(t, settings, redis_client, 1))
    return t


def _sources(settings: Settings):
    spec = settings.topology.get("q")
    return ready_sources(settings.namespace, spec, BRIDGE)[0]


def _wake(client, settings: Settings) -> None:
    client.zadd(names.wake_key(settings.namespace, "q"), {names.WAKE_MEMBER: 0})


def _ahead(taker: Taker, settings: Settings) -> tuple:
    return taker.take_command(_sources(settings), BATCH)


def _inflight(client, settings: Settings) -> int:
    return sum(client.llen(source.inflight) for source in _sources(settings))


def test_a_job_that_wakes_the_wait_comes_back_taken(waker, taker, settings, redis_client):
    ids = fill(redis_client, settings, "q", 3)
    _wake(redis_client, settings)
    started = time.monotonic()
    assert waker.wait(LONGEST_S, _ahead(taker, settings))
    assert time.monotonic() - started < WITHIN_S
    taken = taker.taken_ahead(waker.ahead_reply)
    assert taken is not None
    assert sorted(decode(raw).id for items in taken for raw in items) == sorted(ids)
    assert _inflight(redis_client, settings) == 3  # in this bridge's in-flight list
    assert sum(redis_client.llen(s.key) for s in _sources(settings)) == 0


def test_a_wait_nothing_ends_reads_its_empty_take_and_the_next_wait_works(
        waker, taker, settings, redis_client):
    assert not waker.wait(0.3, _ahead(taker, settings))
    assert taker.taken_ahead(waker.ahead_reply) == [[] for _ in _sources(settings)]
    fill(redis_client, settings, "q", 1)
    _wake(redis_client, settings)
    assert waker.wait(LONGEST_S, _ahead(taker, settings))  # the connection is in step
    taken = taker.taken_ahead(waker.ahead_reply)
    assert taken is not None
    assert sum(len(items) for items in taken) == 1


def test_a_due_delayed_job_ends_the_wait_with_the_take_read_not_left_running(
        waker, taker, settings, redis_client):
    due_ms = time.time_ns() // 1_000_000 - 1000
    redis_client.zadd(names.delayed_key(settings.namespace, "q"), {b"job": due_ms})
    started = time.monotonic()
    assert not waker.wait(LONGEST_S, _ahead(taker, settings))
    assert time.monotonic() - started < WITHIN_S
    assert waker.ahead_reply is not NOT_SENT  # read before the bridge takes again
    assert taker.taken_ahead(waker.ahead_reply) is not None


def test_a_take_queued_behind_a_blocked_wait_runs_when_a_push_ends_it(
        waker, taker, settings, redis_client):
    node = node_client(redis_client, names.wake_key(settings.namespace, "q"))
    waker.arm(LONGEST_S)  # as while waiting for Kafka's reports
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(
        waker.wait(LONGEST_S, _ahead(taker, settings))), daemon=True)
    thread.start()
    # The take waits in Redis's query buffer, behind the blocked BZPOPMIN.
    _until(lambda: any(c["name"] == WAIT_NAME and c["cmd"] == "bzpopmin"
                       and int(c["qbuf"]) > 0 for c in node.client_list()),
           "the take never queued behind the blocked wait")
    fill(redis_client, settings, "q", 2)
    _wake(redis_client, settings)
    thread.join(WITHIN_S)
    assert woke == [True]
    taken = taker.taken_ahead(waker.ahead_reply)
    assert taken is not None
    assert sum(len(items) for items in taken) == 2


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_wait_left_running_is_ended_for_a_due_job_with_its_take_read(
        waker, taker, settings, redis_client):
    waker.arm(LONGEST_S)
    due_ms = time.time_ns() // 1_000_000 - 1000
    redis_client.zadd(names.delayed_key(settings.namespace, "q"), {b"job": due_ms})
    fill(redis_client, settings, "q", 1)  # no wake-up: only the take finds it
    started = time.monotonic()
    assert not waker.wait(LONGEST_S, _ahead(taker, settings))
    assert time.monotonic() - started < WITHIN_S
    taken = taker.taken_ahead(waker.ahead_reply)
    assert taken is not None
    assert sum(len(items) for items in taken) == 1


def test_a_fenced_bridge_takes_nothing_ahead(waker, taker, settings, redis_client):
    fill(redis_client, settings, "q", 2)
    redis_client.srem(names.inflight_owners_key(settings.namespace, "q"), BRIDGE)
    _wake(redis_client, settings)
    assert waker.wait(LONGEST_S, _ahead(taker, settings))
    with pytest.raises(Fenced):
        taker.taken_ahead(waker.ahead_reply)
    assert _inflight(redis_client, settings) == 0


def test_a_lost_script_takes_nothing_and_says_so(waker, taker, settings, redis_client):
    fill(redis_client, settings, "q", 2)
    node_client(redis_client, names.wake_key(settings.namespace, "q")).script_flush()
    _wake(redis_client, settings)
    assert waker.wait(LONGEST_S, _ahead(taker, settings))
    assert taker.taken_ahead(waker.ahead_reply) is None  # NOSCRIPT: the bridge takes itself
    assert _inflight(redis_client, settings) == 0
    assert taker.take_lists(_sources(settings), BATCH) is not None  # which loads it again
    assert _inflight(redis_client, settings) == 2


def test_a_wait_whose_connection_dies_with_the_take_unread_is_an_unknown_outcome(
        waker, taker, settings, redis_client):
    outcome = _outcome_of_a_killed_wait(
        waker, node_client(redis_client, names.wake_key(settings.namespace, "q")),
        lambda: waker.wait(LONGEST_S, _ahead(taker, settings)), "bzpopmin")
    assert isinstance(outcome, OutcomeUnknown), outcome


def _outcome_of_a_killed_wait(waker: Waker, node, wait, killed_in: str) -> BaseException:
    """Run ``wait`` in a thread, kill its connection once Redis shows it in the
    command ``killed_in``, and return what the wait raised."""
    outcome: list[BaseException] = []

    def waiting() -> None:
        try:
            wait()
        except BaseException as exc:  # the test looks at what it was
            outcome.append(exc)

    thread = threading.Thread(target=waiting, daemon=True)
    thread.start()
    _until(lambda: any(c["name"] == WAIT_NAME and c["cmd"] == killed_in
                       for c in node.client_list()), f"the wait never reached {killed_in}")
    node.client_kill_filter(_type="normal", skipme=True,
                            _id=next(int(c["id"]) for c in node.client_list()
                                     if c["name"] == WAIT_NAME))
    thread.join(WITHIN_S)
    assert not thread.is_alive()
    assert len(outcome) == 1
    return outcome[0]


def _taken_acks(taker: Taker, settings: Settings, client, n: int) -> list:
    """Take ``n`` fresh jobs on the taker's own connection: the acks of all of them."""
    fill(client, settings, "q", n)
    sources = _sources(settings)
    taken = taker.take_lists(sources, BATCH)
    return [(source, len(items), []) for source, items in zip(sources, taken, strict=True)
            if items]


def test_an_ack_sent_first_runs_and_is_read_before_the_wait_blocks(
        waker, taker, settings, redis_client):
    acks = _taken_acks(taker, settings, redis_client, 3)
    assert _inflight(redis_client, settings) == 3
    seen: list[tuple[Any, int]] = []  # (reply, in flight) as the reader got it
    first = (taker.ack_command(acks),
             lambda reply: seen.append((reply, _inflight(redis_client, settings))))
    assert not waker.wait(0.3, _ahead(taker, settings), first)  # nothing ends it
    assert len(seen) == 1
    reply, inflight = seen[0]
    assert taker.acked_ahead(reply)
    assert inflight == 0  # trimmed before the reader ran, so before the wait returned
    assert taker.taken_ahead(waker.ahead_reply) == [[] for _ in _sources(settings)]


def test_an_ack_is_not_sent_behind_a_wait_already_running(
        waker, taker, settings, redis_client):
    acks = _taken_acks(taker, settings, redis_client, 2)
    waker.arm(LONGEST_S)  # as while waiting for Kafka's reports
    seen: list[Any] = []
    first = (taker.ack_command(acks), seen.append)
    _wake(redis_client, settings)
    assert waker.wait(LONGEST_S, None, first)
    assert seen == [NOT_SENT]  # the bridge acknowledges on its own connection
    assert _inflight(redis_client, settings) == 2
    taker.ack(acks)
    assert _inflight(redis_client, settings) == 0


def test_a_fenced_bridge_acks_nothing_first_and_the_wait_says_fenced(
        waker, taker, settings, redis_client):
    acks = _taken_acks(taker, settings, redis_client, 2)
    redis_client.srem(names.inflight_owners_key(settings.namespace, "q"), BRIDGE)
    with pytest.raises(Fenced):  # not an unknown outcome: a fenced script never runs
        waker.wait(LONGEST_S, _ahead(taker, settings), (taker.ack_command(acks),
                                                        taker.acked_ahead))
    assert _inflight(redis_client, settings) == 2  # the reaper's to return


def test_a_lost_ack_script_acks_nothing_and_says_so(waker, taker, settings, redis_client):
    acks = _taken_acks(taker, settings, redis_client, 2)
    node_client(redis_client, names.wake_key(settings.namespace, "q")).script_flush()
    seen: list[bool] = []
    first = (taker.ack_command(acks), lambda reply: seen.append(taker.acked_ahead(reply)))
    assert not waker.wait(0.3, None, first)
    assert seen == [False]  # NOSCRIPT: the bridge acks itself
    assert _inflight(redis_client, settings) == 2
    taker.ack(acks)  # which loads it again
    assert _inflight(redis_client, settings) == 0


def test_a_wait_whose_connection_dies_with_the_ack_unread_is_an_unknown_outcome(
        waker, taker, settings, redis_client):
    acks = _taken_acks(taker, settings, redis_client, 2)
    node = node_client(redis_client, names.wake_key(settings.namespace, "q"))
    node.execute_command("CLIENT", "PAUSE", int(LONGEST_S * 1000), "WRITE")  # holds scripts
    try:
        outcome = _outcome_of_a_killed_wait(
            waker, node,
            lambda: waker.wait(LONGEST_S, None, (taker.ack_command(acks), taker.acked_ahead)),
            "evalsha")
    finally:
        node.execute_command("CLIENT", "UNPAUSE")
    assert isinstance(outcome, OutcomeUnknown), outcome


def test_a_bridge_woken_job_by_job_takes_each_ahead_once_and_acks_in_the_next_wait(
        make_settings, redis_client, kafka_cleanup, reports_within_the_flush):
    # No heartbeat in the test's time: a heartbeat rouses the lists for a take of its own.
    settings = make_settings(queues={"q": {"partitions": 1}},
                             bridge={"batch_size": BATCH, "heartbeat_interval_s": 30.0,
                                     "heartbeat_timeout_s": 90.0})
    apply_topics(settings)
    bridge = Bridge(settings, bridge_id="ahead")
    calls: list[int] = []
    own: list[int] = []  # jobs of each ack on the bridge's own connection
    rode: list[tuple[Any, int]] = []  # (reply, jobs) of each ack sent first in a wait
    started, real_rode = bridge._start, bridge._rode

    def counting_start() -> None:  # count the takes and acks on the bridge's own connection
        started()
        real_take, real_ack = bridge._taker.take_lists, bridge._taker.ack

        def take_lists(sources, n):
            calls.append(n)
            return real_take(sources, n)

        def ack(acks):
            own.append(sum(n for _, n, _ in acks))
            return real_ack(acks)

        bridge._taker.take_lists = take_lists  # type: ignore[method-assign]
        bridge._taker.ack = ack  # type: ignore[method-assign]

    def counting_rode(reply: Any) -> None:
        if reply is not NOT_SENT and bridge._riding is not None:
            rode.append((reply, sum(n for _, n, _ in bridge._riding[0])))
        real_rode(reply)

    bridge._rode = counting_rode  # type: ignore[method-assign]
    bridge._start = counting_start  # type: ignore[method-assign]
    runner = threading.Thread(target=bridge.run, daemon=True)
    runner.start()
    ids: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while not calls:  # the start's take: then the bridge waits
            assert time.monotonic() < deadline
            time.sleep(0.01)
        at_idle = len(calls)
        for _ in range(10):  # each once the last is acknowledged: the bridge is idle
            ids += fill(redis_client, settings, "q", 1)
            _wake(redis_client, settings)  # as the push script does
            while bridge.acked_jobs.get("q", 0) < len(ids):
                assert time.monotonic() < deadline, "a job was never acknowledged"
                time.sleep(0.01)
    finally:
        bridge.stop()
        runner.join(30)
    messages = consume(settings, [names.main_topic(settings.namespace, "q", 0)], expect=len(ids))
    counts = id_counts(messages)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    assert len(calls) == at_idle  # every job was taken ahead of a wait
    # An ack rides when Kafka's report came within the trickle's flush, else the
    # bridge sends it on its own; so does a ride that meets a script Redis lost.
    rode_jobs = sum(jobs for reply, jobs in rode if reply == 1)
    assert rode_jobs > 0
    assert rode_jobs + sum(own) == len(ids)  # each job acknowledged once, one way or the other
    assert _inflight_left(redis_client, settings) == 0


def _inflight_left(client, settings: Settings) -> int:
    pattern = names.inflight_pattern(settings.namespace, "q")
    return sum(client.llen(key) for key in client.scan_iter(match=pattern, count=1000))


def test_acks_waiting_for_a_wait_do_not_hold_a_backlog_back(make_settings, redis_client,
                                                          kafka_cleanup,
                                                          reports_within_the_flush):
    # One batch in flight, waits that only a push ends: a settled batch whose ack
    # waited for the next wait filled the bound, and the bridge waited (10 s a batch).
    settings = make_settings(queues={"q": {"partitions": 1}},
                             bridge={"batch_size": 2, "max_batches_in_flight": 1,
                                     "idle_wait_s": LONGEST_S, "heartbeat_interval_s": 30.0,
                                     "heartbeat_timeout_s": 90.0})
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", 20)
    _wake(redis_client, settings)
    bridge = Bridge(settings, bridge_id="backlog")
    sent_alone: list[bool] = []  # per call: was an ack waiting, sent on its own
    real_ack_riding = bridge._ack_riding

    def ack_riding(acked: bool = False) -> None:
        sent_alone.append(bridge._riding is not None and not acked)
        real_ack_riding(acked)

    bridge._ack_riding = ack_riding  # type: ignore[method-assign]
    runner = threading.Thread(target=bridge.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 3 * LONGEST_S  # ten batches: 100 s if each waited
        while bridge.acked_jobs.get("q", 0) < len(ids):
            assert time.monotonic() < deadline, f"acked {bridge.acked_jobs} of {len(ids)}"
            time.sleep(0.01)
    finally:
        bridge.stop()
        runner.join(30)
    # The case at hand happened: an ack waited for a wait and went on its own instead.
    assert any(sent_alone)
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q", 0)],
                               expect=len(ids)))
    assert set(counts) == set(ids)
    assert _inflight_left(redis_client, settings) == 0


def test_an_ack_whose_reply_the_wait_lost_is_not_sent_again_at_exit(
        make_settings, redis_client, kafka_cleanup, reports_within_the_flush):
    # The ack rides in a wait sent while Redis is busy past the socket timeout:
    # it runs later, and so does the take behind it. Stopped then, the bridge
    # must not send the ack again (it would trim the job that take moved in,
    # which Kafka never had): its id is retired, every in-flight job goes back.
    settings = make_settings(queues={"q": {"partitions": 1, "shards": 1}},
                             bridge={"batch_size": BATCH, "heartbeat_interval_s": 30.0,
                                     "heartbeat_timeout_s": 90.0},
                             redis={"socket_timeout_s": 0.3})  # under busy()'s spell
    apply_topics(settings)
    bridge = Bridge(settings, bridge_id="lost")
    ids: list[str] = []
    trapped: list[BaseException] = []
    started = bridge._start

    def trapping_start() -> None:
        started()
        real_wait = bridge._waker.wait

        def wait(longest_s, ahead=None, first=None):
            # Only a wait on a connection already open: one that must connect first
            # fails before it sends anything, with nothing at stake.
            if first is None or trapped or not bridge._waker._blocked:
                return real_wait(longest_s, ahead, first)
            ids.extend(fill(redis_client, settings, "q", 1))  # for the take behind the wait
            _wake(redis_client, settings)
            try:
                with busy(redis_client, names.ready_key(settings.namespace, "q", 0, 0)):
                    return real_wait(longest_s, ahead, first)
            except BaseException as exc:
                trapped.append(exc)
                bridge.stop()  # before the bridge retires its id
                raise

        bridge._waker.wait = wait  # type: ignore[method-assign]

    bridge._start = trapping_start  # type: ignore[method-assign]
    runner = threading.Thread(target=bridge.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not trapped:  # job by job until an ack rides
            assert time.monotonic() < deadline, "no ack ever rode in a wait"
            ids += fill(redis_client, settings, "q", 1)
            _wake(redis_client, settings)
            while bridge.acked_jobs.get("q", 0) < len(ids) and not trapped:
                assert time.monotonic() < deadline, "a job was never acknowledged"
                time.sleep(0.01)
    finally:
        bridge.stop()
        runner.join(30)
    assert isinstance(trapped[0], OutcomeUnknown), trapped
    in_kafka = id_counts(consume(settings, [names.main_topic(settings.namespace, "q", 0)],
                                 expect=len(ids) - 1, timeout_s=30))
    held = [decode(raw).id for source in _sources(settings)
            for raw in redis_client.lrange(source.key, 0, -1)]
    lost = set(ids) - set(in_kafka) - set(held)
    assert not lost, f"{len(lost)} jobs neither in Kafka nor back in ready"
    assert _inflight_left(redis_client, settings) == 0
