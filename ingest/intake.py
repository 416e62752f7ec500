"""The sans-I/O core both producers share: validate, encode, place, plan.

:class:`Intake` turns an enqueue call into one :class:`~ingest.plan.PushPlan`
(or raises a typed :class:`~jobpipe.errors.JobRejected` before anything is
written) and turns the script's reply into ids or an error. The sync and
asyncio shells add only the I/O: sending the plan, sleeping, spooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import redis.exceptions

from ingest.backoff import Attempts
from ingest.plan import PlanBuilder, PushPlan, QueueLayout, SlotsBuilder
from ingest.scripts import PushReply
from ingest.template import EnvelopeTemplate
from jobpipe import jobstatus, tracing
from jobpipe.envelope import now_ns
from jobpipe.errors import JobRejected, JobTooLarge, QueueFull, UnknownQueue
from jobpipe.ids import new_job_ids
from jobpipe.options import JobOptions, Resolved
from jobpipe.redis_failures import is_out_of_memory
from jobpipe.routing import tenant_or_default
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, shard_for

MAX_TASK_CHARS = 200
# Below this many jobs one EVALSHA beats MULTI/LPUSH/EXEC (one command, not 3+);
# above it the script's cost of turning each argument into a Lua string dominates
# (measured: 49 vs 66 µs for one job; 2x slower than MULTI for 100k jobs).
MULTI_MIN_JOBS = 256


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job of a mixed batch (each with its own task and options)."""

    task: str
    args: Any = None
    options: JobOptions = field(default_factory=JobOptions)


class InvalidJobs(JobRejected):
    """Some jobs of a batch are invalid; nothing was written.

    Attributes:
        problems: ``(index in the batch, message)`` for every bad job.
    """

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"jobs[{first[0]}]: {first[1]}{more}")
        self.problems = problems


class Intake:
    """Everything about an enqueue that is not I/O.

    Args:
        settings: namespace, topology and ``[ingest]`` options.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._layouts: dict[str, QueueLayout] = {}
        self._slot_layouts: dict[str, list[QueueLayout]] = {}
        self._spread = count()
        self._backlog: dict[str, int] = {}  # last backlog seen per queue

    def layout(self, queue: str) -> QueueLayout:
        """The keys of a declared queue.

        Raises:
            UnknownQueue: ``queue`` is not in the topology.
        """
        layout = self._layouts.get(queue)
        if layout is None:
            spec = self.settings.topology.queues.get(queue) if isinstance(queue, str) else None
            if spec is None:
                known = ", ".join(sorted(self.settings.topology.queues))
                raise UnknownQueue(f"unknown queue {queue!r} (declared: {known})")
            layout = self._layouts[queue] = QueueLayout.of(self.settings.namespace, spec)
        return layout

    def plan_many(self, queue: str, task: str, args_list: Sequence[Any],
                  options: JobOptions) -> PushPlan:
        """One call for jobs sharing task and options (``enqueue``/``enqueue_many``).

        Raises:
            JobRejected: (or a subclass) bad queue, task, options or args.
        """
        layout = self.layout(queue)
        spec = layout.spec
        _check_task(queue, task)
        now = now_ns()
        opts = options.resolve(spec, now)
        n = len(args_list)
        if n > 1 and opts.idem is not None:
            raise JobRejected(f"queue {queue!r}: idempotency_key and unique_for_s apply to "
                              "one job; use enqueue() per job")
        builder = self._builder(layout)
        if n == 0:
            return builder.build([])
        template = _template(queue, task, opts, now)
        ids = new_job_ids(n, now)
        jobs = template.render_many(ids, args_list if isinstance(args_list, list)
                                    else list(args_list))
        _check_size(queue, spec.max_job_bytes, jobs)
        self._add(builder, layout, opts, jobs, ids, 0)
        _track(builder, spec, ids, opts, now)
        return builder.build(ids)

    def plan_jobs(self, queue: str, requests: Sequence[JobRequest]) -> PushPlan:
        """One all-or-nothing call for jobs with their own task and options.

        Raises:
            UnknownQueue: ``queue`` is not declared.
            InvalidJobs: naming every bad job by its index.
        """
        layout = self.layout(queue)
        spec = layout.spec
        now = now_ns()
        builder = self._builder(layout)
        ids: list[str] = []
        problems: list[tuple[int, str]] = []
        last: tuple[str, JobOptions] | None = None
        template: EnvelopeTemplate | None = None
        opts: Resolved | None = None
        meta: dict[str, str] = dict(tracing.inject({}))
        fresh_ids = new_job_ids(len(requests), now)
        for index, request in enumerate(requests):
            try:
                if last != (request.task, request.options) or template is None or opts is None:
                    _check_task(queue, request.task)
                    opts = request.options.resolve(spec, now)
                    template = _template(queue, request.task, opts, now, meta)
                    last = (request.task, request.options)
                job_id = fresh_ids[index]
                job = template.render(job_id, request.args)
                _check_size(queue, spec.max_job_bytes, [job])
            except JobRejected as exc:
                problems.append((index, str(exc)))
                continue
            self._add(builder, layout, opts, [job], [job_id], index)
            _track(builder, spec, [job_id], opts, now)
            ids.append(job_id)
        if problems:
            raise InvalidJobs(problems)
        return builder.build(ids)

    def _builder(self, layout: QueueLayout) -> PlanBuilder | SlotsBuilder:
        spec = layout.spec
        if not spec.shard_slots:
            return PlanBuilder(layout, spec.max_backlog)
        slots = self._slot_layouts.get(spec.name)
        if slots is None:
            ns = self.settings.namespace
            slots = self._slot_layouts[spec.name] = [QueueLayout.of(ns, spec, shard)
                                                     for shard in range(spec.shards)]
        return SlotsBuilder(slots, layout, spec.max_backlog)

    def _add(self, builder: PlanBuilder | SlotsBuilder, layout: QueueLayout, opts: Resolved,
             jobs: list[bytes], ids: list[str], first: int) -> None:
        """Jobs of one set of options (``ids[i]`` is ``jobs[i]``'s, ``first`` the
        index of ``ids[0]`` in the call), behind their unique window if any."""
        if isinstance(builder, SlotsBuilder):
            self._place_slots(builder, layout, opts, jobs, ids, first)
            return
        if opts.unique_ttl_s is not None and opts.idem is not None:
            builder.unique(opts.idem, opts.unique_ttl_s, ids[0], first)
        self._place(builder, layout, opts, jobs)

    def _place_slots(self, builder: SlotsBuilder, layout: QueueLayout, opts: Resolved,
                     jobs: list[bytes], ids: list[str], first: int) -> None:
        """As :meth:`_place`, for a queue with ``shard_slots``: the shard is chosen
        here for delayed jobs too (promotion keeps them on it, in its slot), and a
        unique job without a key goes to the shard of its idempotency key, where
        its window lives (so one idempotency key has one window)."""
        spec, routes = layout.spec, layout.routes
        unique = opts.idem if opts.unique_ttl_s is not None else None
        if opts.key is not None:
            deal = [(shard_for(opts.key.encode(), spec.shards, 0), jobs, ids)]
        elif unique is not None:
            deal = [(shard_for(unique.encode(), spec.shards, 0), jobs, ids)]
        else:
            deal = [(shard, jobs[share], ids[share])
                    for shard, share in self._deal(spec.shards, len(jobs))]
        for shard, shard_jobs, shard_ids in deal:
            part = builder.part(shard, shard_ids)
            if unique is not None and opts.unique_ttl_s is not None:
                part.unique(unique, opts.unique_ttl_s, ids[0], first)
            if opts.run_at_ns is not None:
                part.delay(opts.run_at_ns // 1_000_000, shard_jobs)
            else:
                part.push(routes.ready[opts.priority][shard], shard_jobs)
            if len(deal) > 1:
                part.seal()

    def _place(self, builder: PlanBuilder, layout: QueueLayout, opts: Resolved,
               jobs: list[bytes]) -> None:
        spec, routes = layout.spec, layout.routes
        if opts.run_at_ns is not None:
            builder.delay(opts.run_at_ns // 1_000_000, jobs)
        elif spec.fair:
            builder.push_tenant(tenant_or_default(opts.tenant), jobs)
        elif opts.key is not None:
            builder.push(routes.ready_list(opts.key.encode(), opts.priority, 0), jobs)
        else:
            lists = routes.ready[opts.priority]
            dealt = self._deal(spec.shards, len(jobs))
            for shard, share in dealt:
                builder.push(lists[shard], jobs[share])
            if len(dealt) > 1:
                builder.seal()

    def _deal(self, shards: int, n: int) -> list[tuple[int, slice]]:
        """Where a batch of ``n`` unkeyed jobs goes: ``(shard, its share of the
        batch)``, dealt round robin from where the spreading counter points."""
        start = next(self._spread)
        if n == 1 or shards == 1:
            return [(start % shards, slice(None))]
        return [((start + offset) % shards, slice(offset, None, shards))
                for offset in range(min(shards, n))]

    def use_multi(self, plan: PushPlan) -> bool:
        """Whether to send a plan as MULTI/LPUSH/EXEC rather than the push script.

        Never on a Redis Cluster: the MULTI is written on a raw pooled connection,
        which follows no MOVED redirection; the script is routed by its keys.
        Nor with ``redis.wait_replicas``: the confirmed path is the script's.
        """
        redis_settings = self.settings.redis
        return (plan.lists is not None and len(plan.ids) >= MULTI_MIN_JOBS
                and not redis_settings.cluster and not redis_settings.wait_replicas)

    def must_check(self, plan: PushPlan) -> bool:
        """Whether a plain plan must pass the high-water-mark script first.

        Plain pushes go as MULTI/LPUSH/EXEC, whose reply also counts the ready
        lists; the next call trusts that count while it is under the mark and
        checks again (one small script call) only once it was at or past it.
        Concurrent producers may so overshoot the mark by a batch each.
        """
        limit = self.layout(plan.queue).spec.max_backlog
        return bool(limit) and self._backlog.get(plan.queue, 0) >= (limit or 0)

    def multi_reply(self, plan: PushPlan, replies: list[Any]) -> PushReply:
        """What the replies of a MULTI/LPUSH/EXEC push mean; Redis at ``maxmemory``
        reads as full.

        Raises:
            redis.exceptions.ResponseError: any other error reply.
        """
        try:
            backlog = plan.multi_backlog(replies)
        except redis.exceptions.ResponseError as exc:
            if is_out_of_memory(exc):
                return PushReply(True, -1, [])
            raise
        self.observe(plan.queue, backlog + len(plan.ids))
        return PushReply(False, backlog, [])

    def observe(self, queue: str, backlog: int) -> None:
        """Remember the backlog a reply reported for ``queue``."""
        self._backlog[queue] = backlog

    def attempts(self, started_s: float) -> Attempts:
        """The retry budget of one call started at monotonic ``started_s``."""
        ingest = self.settings.ingest
        return Attempts(started_s, ingest.deadline_s, ingest.on_full == "block",
                        ingest.block_timeout_s)

    def full_error(self, plan: PushPlan, reply: PushReply) -> QueueFull:
        """The error for a queue at its high-water mark."""
        spec = self.layout(plan.queue).spec
        return QueueFull(f"queue {plan.queue!r} is full: {reply.backlog} jobs waiting in Redis "
                         f"(max_backlog {spec.max_backlog})")


def _track(builder: PlanBuilder | SlotsBuilder, spec: QueueSpec, ids: list[str], opts: Resolved,
           now: int) -> None:
    if spec.track_status:
        if opts.run_at_ns is None:
            builder.track(ids, jobstatus.new_record(jobstatus.QUEUED, now, {}))
        else:
            builder.track(ids, jobstatus.new_record(jobstatus.DELAYED, now,
                                                    {"run_at": opts.run_at_ns}))


def _check_task(queue: str, task: str) -> None:
    if not isinstance(task, str) or not task or len(task) > MAX_TASK_CHARS:
        raise JobRejected(f"queue {queue!r}: task must be a non-empty string of at most "
                          f"{MAX_TASK_CHARS} characters, not {task!r}")


def _template(queue: str, task: str, opts: Resolved, now: int,
              meta: dict[str, str] | None = None) -> EnvelopeTemplate:
    if meta is None:
        meta = dict(tracing.inject({}))
    return EnvelopeTemplate(queue=queue, task=task, key=opts.key, tenant=opts.tenant,
                            priority=opts.priority, max_attempts=opts.max_attempts,
                            enqueued_at_ns=now, run_at_ns=opts.run_at_ns, idem=opts.idem,
                            meta=meta)


def _check_size(queue: str, cap_bytes: int, jobs: list[bytes]) -> None:
    largest = max(map(len, jobs))
    if largest > cap_bytes:
        index = next(i for i, job in enumerate(jobs) if len(job) == largest)
        raise JobTooLarge(f"queue {queue!r}: job {index} is {largest} bytes, over "
                          f"max_job_bytes {cap_bytes}")
