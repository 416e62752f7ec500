"""Under saturation the worker serves queues by lottery weight; the low one is not starved."""

from __future__ import annotations

import asyncio

import pytest

from consumers import App, JobContext, Worker
from tests.integration.consumers.helpers import make_job, produce_jobs, setup_topics

pytestmark = pytest.mark.integration


def test_lottery_shares_within_ten_percent_of_weights(make_settings, redis_client,
                                                      kafka_cleanup):
    settings = make_settings(queues={"high": {"partitions": 1, "weight": 3},
                                     "low": {"partitions": 1, "weight": 1}},
                             worker={"concurrency": 1})
    setup_topics(settings)
    app = App("t")
    order: list[str] = []

    @app.task
    async def work(ctx: JobContext, args: dict) -> None:
        order.append(ctx.queue)
        await asyncio.sleep(0.001)

    # Every job is in Kafka before the worker starts, and a starting worker runs nothing
    # until each of its partitions delivered its first fetch (consumers.first_fetch):
    # the shares hold from the first job, however far apart those fetches arrived.
    produce_jobs(settings, [make_job(q, "work") for q in ("high", "low") for _ in range(600)])
    assert Worker(settings, app).run_until_idle(120)
    window = order[:400]  # both queues saturated: each still has work waiting
    high_share = window.count("high") / len(window)
    assert abs(high_share - 0.75) <= 0.075
    assert window.count("low") > 0
    assert len(order) == 1200
