"""Rebalance callbacks reach the event loop in the order the consumer made them.

A session that expires (a frozen broker) is lost and re-assigned in quick
succession. If the loss were handled on the loop after the new assignment, the
worker would keep treating the partitions as gone and drop their jobs for good.
"""

from __future__ import annotations

import asyncio
import threading
import time

from confluent_kafka import TopicPartition

from consumers.fetcher import TP, Fetcher
from jobpipe.settings import load_settings


async def _no_revoke(tps: list[TP]) -> dict[TP, int]:
    return {}


def test_a_loss_then_a_new_assignment_leave_the_partition_assigned_on_a_busy_loop():
    loop = asyncio.new_event_loop()
    gone: set[TP] = set()
    fetcher = Fetcher(load_settings(None, environ={}), ["t"], loop, lambda msgs: None,
                      _no_revoke, gone.update, gone.difference_update,
                      lambda error: None)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        loop.call_soon_threadsafe(time.sleep, 0.3)  # the loop is busy with a job
        tps = [TopicPartition("t", 0), TopicPartition("t", 1)]
        fetcher._lost(None, tps)  # what librdkafka calls on the consumer thread
        fetcher._assigned(None, tps)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)
        assert gone == set()
        assert fetcher.assignment == {("t", 0), ("t", 1)}
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
