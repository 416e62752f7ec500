"""The worker runs jobs from the main topic and commits them."""

from __future__ import annotations

import pytest

from consumers import App, JobContext, Worker
from tests.integration.consumers.helpers import make_job, produce_jobs, setup_topics
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]


def test_worker_runs_every_job_once_and_goes_idle(make_settings, redis_client, kafka_cleanup):
    settings = make_settings()
    setup_topics(settings)
    app = App("t")
    seen: list[str] = []

    @app.task
    async def noop(ctx: JobContext, args: dict) -> None:
        seen.append(ctx.job_id)

    @app.task("sync_noop")
    def sync_noop(ctx: JobContext, args: dict) -> None:
        seen.append(ctx.job_id)

    jobs = [make_job("default", "noop" if i % 2 else "sync_noop", {"i": i}) for i in range(200)]
    produce_jobs(settings, jobs)
    assert Worker(settings, app).run_until_idle(60)
    assert sorted(seen) == sorted(j.id for j in jobs)
