"""The worker's Redis users share one asyncio client, from its very first command.

A worker builds one client and hands it to its rate limiter, done markers, pause
controls and job states, whose coroutines call it at once. On a cluster that
client has not learnt the slots yet when they start (a Redis down at start, or
the client re-learning them after a fail-over): the commands must still reach
the node of their keys, and none may break another's connection.
"""

from __future__ import annotations

import asyncio

import pytest

from consumers.control import Controls
from consumers.idempotency import DoneMarkers
from consumers.ratelimit import RateLimiter
from consumers.states import JobStates
from jobpipe import jobstatus, names
from jobpipe.connections import async_redis_client
from jobpipe.envelope import Job
from jobpipe.ids import new_job_ids
from jobpipe.jobstatus import Update
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec
from tests.redis_modes import BOTH_CLUSTER_SLOW, CLUSTER, SINGLE

pytestmark = pytest.mark.integration

# Queues whose hash tags spread over every primary of a 3-primary cluster.
QUEUES = [f"q{i}" for i in range(6)]
# Calls per queue and user at once: a single Redis's pool holds 100 connections, a
# cluster client has one such pool per node.
CALLS_PER_QUEUE = {SINGLE: 6, CLUSTER: 8}
# Fresh clients in a row: how often a race shows is luck, each round is one more try.
ROUNDS = 10


async def _first_commands_at_once(settings: Settings, specs: list[QueueSpec], round_: int,
                                  calls: int) -> None:
    """Every Redis user of a worker calls a client that has run no command yet, at once."""
    ns = settings.namespace
    client = async_redis_client(settings.redis)  # as the worker's: no command run yet
    limiter, markers = RateLimiter(client, ns), DoneMarkers(client, ns)
    controls, states = Controls(client, ns, specs), JobStates(client, ns, specs)
    for spec in specs:
        states.add(spec.name, Update(f"{spec.name}-job{round_}", jobstatus.RUNNING, 1, {}))
    try:
        await asyncio.gather(
            *(limiter.acquire(spec, "t") for spec in specs for _ in range(calls)),
            # Explicit idempotency keys: markers of their own (the queues track
            # status); the jobs keyed by id are looked up in their state records.
            *(markers.mark([(spec, [_job(spec, f"k{round_}-{i}")])])
              for spec in specs for i in range(calls)),
            *(markers.seen(spec, [_job(spec, "k0"), _job(spec, None)]) for spec in specs),
            controls.refresh(),
            states.flush(),  # logs and drops a failed write: read back below
        )
    finally:
        await client.aclose()  # type: ignore[attr-defined]


def _job(spec: QueueSpec, idem: str | None) -> Job:
    return Job(id=new_job_ids(1)[0], queue=spec.name, task="t", idem=idem)


@BOTH_CLUSTER_SLOW
async def test_every_redis_user_of_the_worker_shares_a_fresh_client(make_settings, redis_mode,
                                                                     redis_client):
    settings = make_settings(queues={q: {"partitions": 1, "track_status": True,
                                         "rate_limit_per_s": 10_000.0} for q in QUEUES})
    specs = [settings.topology.queues[q] for q in QUEUES]
    calls = CALLS_PER_QUEUE[redis_mode]
    for round_ in range(ROUNDS):
        await _first_commands_at_once(settings, specs, round_, calls)
        for spec in specs:
            done = [names.done_key(settings.namespace, spec.name, f"k{round_}-{i}")
                    for i in range(calls)]
            assert all(redis_client.mget(done)), (round_, spec.name)
            status = jobstatus.lookup(redis_client, settings, f"{spec.name}-job{round_}")
            assert status is not None, (round_, spec.name)
            assert status.state == jobstatus.RUNNING, (round_, spec.name)
