"""Follow-up jobs (``ctx.enqueue``) are held to the producers' option checks."""

from __future__ import annotations

import pytest

from consumers import App, JobContext, Worker
from jobpipe.errors import JobRejected
from tests.integration.consumers.helpers import make_job, produce_jobs, setup_topics

pytestmark = pytest.mark.integration

BAD = [
    ({"tenant": "not a tenant!"}, "tenant"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"priority": 1}, "priority"),
    ({"key": 7}, "key"),
    ({"delay_s": 5}, "unknown enqueue options: delay_s"),
]


def test_a_follow_up_with_a_bad_option_is_refused_like_a_producer_job(
        make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 1}})
    setup_topics(settings)
    app = App("t")
    refused: list[str] = []
    ran: list[str] = []

    @app.task
    def parent(ctx: JobContext, args: dict) -> None:
        for options, _ in BAD:
            try:
                ctx.enqueue("default", "child", {}, **options)
            except JobRejected as exc:
                refused.append(str(exc))
        ctx.enqueue("default", "child", {"ok": True}, tenant="acme", max_attempts=2)

    @app.task
    def child(ctx: JobContext, args: dict) -> None:
        ran.append(ctx.job.tenant or "")

    produce_jobs(settings, [make_job("default", "parent")])
    assert Worker(settings, app).run_until_idle(60)
    assert len(refused) == len(BAD)
    for message, (_, expected) in zip(refused, BAD, strict=True):
        assert expected in message
    assert ran == ["acme"]
