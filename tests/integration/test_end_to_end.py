"""Producer -> Redis -> bridge -> Kafka -> worker: 10,000 jobs, every id executed."""

from __future__ import annotations

import pytest

from bridge import Bridge
from consumers import App, JobContext, Worker
from ingest import Producer
from jobpipe.admin import apply_topics
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]


def test_ten_thousand_jobs_flow_end_to_end(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 3, "retry_tiers_s": [1, 2]}})
    apply_topics(settings)
    app = App("e2e")
    executed: set[str] = set()

    @app.task
    async def noop(ctx: JobContext, args: dict) -> None:
        executed.add(ctx.job_id)

    with Producer(settings) as producer:
        ids = producer.enqueue_many("default", "noop", [{"i": i} for i in range(10_000)])
    assert len(set(ids)) == 10_000
    assert Bridge(settings).run_until_idle(120)
    assert Worker(settings, app).run_until_idle(120)
    assert executed == set(ids)
