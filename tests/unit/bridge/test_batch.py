"""Batch outcomes and the take-order rule for acknowledgements."""

from __future__ import annotations

import pytest

from bridge.batch import AckOrder, Batch, DeadJob, Source

SRC_A = Source("q", "ready:a", "inflight:a", "topic")
SRC_B = Source("q", "ready:b", "inflight:b", "topic")


class Msg:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value


def batch(source: Source, n: int) -> Batch:
    return Batch(source, [b"j%d" % i for i in range(n)], 0.0)


def deliver_all(b: Batch) -> None:
    for raw in b.items:
        b.on_delivery(None, Msg(raw))


def test_a_batch_is_complete_only_when_every_job_is_delivered():
    b = batch(SRC_A, 3)
    b.on_delivery(None, Msg(b"j0"))
    b.on_delivery(None, Msg(b"j1"))
    assert not b.complete
    b.on_delivery(None, Msg(b"j2"))
    assert b.complete


def test_a_failed_report_keeps_the_batch_open_until_settled():
    b = batch(SRC_A, 2)
    b.on_delivery(None, Msg(b"j0"))
    b.on_delivery("boom", Msg(b"j1"))
    assert not b.complete
    b.errors.clear()
    b.settle_dead(DeadJob(b"j1", "message_too_large", "too big"))
    assert b.complete
    assert [d.raw for d in b.dead] == [b"j1"]


def test_retries_keep_the_batch_open():
    b = batch(SRC_A, 1)
    b.retry.append(b"j0")
    assert not b.complete


def test_acks_follow_take_order_per_inflight_list():
    order = AckOrder()
    old, new, other = batch(SRC_A, 2), batch(SRC_A, 2), batch(SRC_B, 1)
    for b in (old, new, other):
        order.add(b)
    deliver_all(new)
    deliver_all(other)
    assert order.ackable() == [[other]]  # the newer batch of A waits for the older one
    order.remove([other])
    deliver_all(old)
    assert order.ackable() == [[old, new]]
    order.remove([old, new])
    assert len(order) == 0


def test_removing_out_of_order_is_refused():
    order = AckOrder()
    old, new = batch(SRC_A, 1), batch(SRC_A, 1)
    order.add(old)
    order.add(new)
    with pytest.raises(AssertionError):
        order.remove([new])


def test_clear_drops_everything():
    order = AckOrder()
    order.add(batch(SRC_A, 2))
    order.add(batch(SRC_B, 3))
    assert order.jobs() == 5
    assert len(order.clear()) == 2
    assert len(order) == 0
