"""Follow-up jobs from ``ctx.enqueue``: produced straight to the queue's main topic.

The parent job counts as done only once Kafka acknowledged every follow-up it
enqueued, so a crash in between re-runs the parent instead of losing a child.
Follow-ups skip the Redis front buffer: delays, unique windows and fair tenant
lists do not apply to them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from consumers.context import JobContext
from consumers.producing import DeliveringProducer
from jobpipe import names
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from jobpipe.errors import JobRejected, NotSerializable, UnknownQueue
from jobpipe.options import OPTION_NAMES, JobOptions
from jobpipe.topology import Topology

# Options that only the Redis front buffer can honour.
_NOT_FOR_FOLLOW_UPS = frozenset({"delay_s", "run_at", "unique_for_s"})
_OPTIONS = frozenset(OPTION_NAMES) - _NOT_FOR_FOLLOW_UPS


class FollowUps:
    """Produces follow-up jobs and settles the parent when all are acknowledged.

    Args:
        producer: the process's shared producer.
        topology: declared queues.
        namespace: topic namespace.
        loop: the worker's event loop (delivery reports come back to it).
    """

    def __init__(self, producer: DeliveringProducer, topology: Topology, namespace: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._producer = producer
        self._topology = topology
        self._ns = namespace
        self._loop = loop

    def enqueue(self, ctx: JobContext, queue: str, task: str, args: Any,
                options: dict[str, Any]) -> str:
        """Produce one follow-up of ``ctx``'s job; returns its id.

        Raises:
            UnknownQueue: the queue is not declared (a ``ConfigError`` subclass is
                not used here: it is the job's input that is wrong).
            JobRejected: an unknown option, or one the producers would refuse
                (:meth:`jobpipe.options.JobOptions.resolve`).
            NotSerializable: ``args`` is not JSON.
        """
        unknown = set(options) - _OPTIONS
        if unknown:
            raise JobRejected(f"unknown enqueue options: {', '.join(sorted(unknown))}")
        spec = self._topology.queues.get(queue)
        if spec is None:
            raise UnknownQueue(f"unknown queue {queue!r}")
        now = now_ns()
        opts = JobOptions(**options).resolve(spec, now)  # the producers' checks, all of them
        key = opts.key
        priority = opts.priority
        job = Job(id=new_job_id(), queue=queue, task=task, args=args, key=key,
                  tenant=opts.tenant, priority=priority, max_attempts=opts.max_attempts,
                  enqueued_at=now, idem=opts.idem, meta={"parent": ctx.job_id})
        try:
            raw = encode(job)
        except TypeError as exc:
            raise NotSerializable(f"args of follow-up {task!r} are not JSON: {exc}") from exc
        ctx._produced += 1
        loop = self._loop

        def delivered() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_one_delivered, ctx)

        self._producer.produce(names.main_topic(self._ns, queue, priority), raw,
                               key.encode() if key else None, None, delivered)
        return job.id


def _one_delivered(ctx: JobContext) -> None:
    ctx._delivered += 1
    if ctx._delivered == ctx._produced and ctx._on_settled is not None:
        ctx._on_settled()
