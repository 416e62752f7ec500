"""Task references: enqueue a task by its object, type-checked, instead of by two strings.

A :class:`TaskRef` names a task (its queue and name) and carries the type of
its ``args`` for the type checker. Bound to a producer, it enqueues::

    send_email.using(producer).enqueue({"to": "a@b.example", "subject": "hi"}, key="a@b")
    await send_email.using(async_producer).enqueue({...})

and mypy checks ``args`` against the handler's ``args`` parameter. There is no
hidden global producer: the caller says which producer sends the job. (The
producer is named in a call of its own so that mypy knows ``args``' type
before it reads a dict literal; ``producer.enqueue(ref, {...})`` would make
mypy infer the literal on its own and reject valid TypedDicts.)

A ref comes from either side, so producers need not import workers:

* declared in a small module both sides import (only ``jobpipe`` inside), then
  implemented by the worker with ``@app.task(SEND_EMAIL)``::

      SEND_EMAIL: TaskRef[Email] = TaskRef("mail", "send_email")

* or returned by the worker's decorator itself, ``@app.task(queue="mail")``.

Job options stay keyword-only and never share a namespace with ``args``
(:class:`EnqueueOptions`), as in every other way of enqueueing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypedDict, TypeVar, Unpack, overload

from jobpipe import names
from jobpipe.errors import ConfigError

A = TypeVar("A")


class EnqueueOptions(TypedDict, total=False):
    """The job options as keyword arguments (the fields of :class:`jobpipe.options.JobOptions`)."""

    key: str | None
    tenant: str | None
    priority: int | None
    delay_s: float | None
    run_at: datetime | float | None
    idempotency_key: str | None
    unique_for_s: float | None
    max_attempts: int | None


class Enqueuer(Protocol):
    """What :class:`ingest.Producer` offers (named here: ``jobpipe`` imports no stage)."""

    def enqueue(self, queue: str, task: str, args: Any = None,
                **options: Unpack[EnqueueOptions]) -> str: ...

    def enqueue_many(self, queue: str, task: str, args_list: Sequence[Any],
                     **options: Unpack[EnqueueOptions]) -> list[str]: ...


class AsyncEnqueuer(Protocol):
    """What :class:`ingest.AsyncProducer` offers."""

    def enqueue(self, queue: str, task: str, args: Any = None,
                **options: Unpack[EnqueueOptions]) -> Awaitable[str]: ...

    def enqueue_many(self, queue: str, task: str, args_list: Sequence[Any],
                     **options: Unpack[EnqueueOptions]) -> Awaitable[list[str]]: ...


@dataclass(frozen=True, slots=True)
class TaskRef(Generic[A]):
    """A task's address, typed by its ``args``.

    Attributes:
        queue: the queue its jobs are enqueued on (declared in the topology).
        name: the task name the worker registered its handler under.
    """

    queue: str
    name: str

    def __post_init__(self) -> None:
        if not (isinstance(self.queue, str) and names.is_valid_queue_name(self.queue)):
            raise ConfigError(f"TaskRef: queue {self.queue!r} is not a valid queue name")
        if not (isinstance(self.name, str) and self.name):
            raise ConfigError(f"TaskRef: task name must be a non-empty string, not "
                              f"{self.name!r}")

    @overload
    def using(self, producer: Enqueuer) -> BoundTask[A]: ...

    @overload
    def using(self, producer: AsyncEnqueuer) -> AsyncBoundTask[A]: ...

    def using(self, producer: Any) -> BoundTask[A] | AsyncBoundTask[A]:
        """This task, enqueued through ``producer`` (sync or asyncio)."""
        if inspect.iscoroutinefunction(getattr(producer, "enqueue", None)):
            return AsyncBoundTask(self, producer)
        return BoundTask(self, producer)


@dataclass(frozen=True, slots=True)
class BoundTask(Generic[A]):
    """A task and the producer that sends its jobs."""

    ref: TaskRef[A]
    producer: Enqueuer

    def enqueue(self, args: A, /, **options: Unpack[EnqueueOptions]) -> str:
        """Enqueue one job; returns its id. Raises as ``Producer.enqueue``."""
        return self.producer.enqueue(self.ref.queue, self.ref.name, args, **options)

    def enqueue_many(self, args_list: Sequence[A], /,
                     **options: Unpack[EnqueueOptions]) -> list[str]:
        """Enqueue one job per element, all or nothing. Raises as ``Producer.enqueue_many``."""
        return self.producer.enqueue_many(self.ref.queue, self.ref.name, args_list, **options)


@dataclass(frozen=True, slots=True)
class AsyncBoundTask(Generic[A]):
    """A task and the asyncio producer that sends its jobs."""

    ref: TaskRef[A]
    producer: AsyncEnqueuer

    async def enqueue(self, args: A, /, **options: Unpack[EnqueueOptions]) -> str:
        """Enqueue one job; returns its id. Raises as ``AsyncProducer.enqueue``."""
        return await self.producer.enqueue(self.ref.queue, self.ref.name, args, **options)

    async def enqueue_many(self, args_list: Sequence[A], /,
                           **options: Unpack[EnqueueOptions]) -> list[str]:
        """Enqueue one job per element, all or nothing."""
        return await self.producer.enqueue_many(self.ref.queue, self.ref.name, args_list,
                                                **options)
