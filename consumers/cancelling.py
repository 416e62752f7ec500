"""Cancel a worker's tasks and wait until every one has ended.

redis-py's asyncio client can absorb a cancel that lands while a command is in
flight: the awaiting task sees the command finish, or fail with an ordinary
error it logs and waits out, and goes on looping. A shutdown that cancels its
tasks once and gathers them then waits for that task forever, and since the
consumer is closed only after that, the stopping worker stays in its group
holding partitions that nobody serves. So a task still running
``RECANCEL_S`` after its cancel is cancelled again; the next cancel lands in
one of its waits (a sleep, an event) and ends it. ``RECANCEL_S`` leaves a task
time for a short clean-up on cancel (one Redis command) before it is repeated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

RECANCEL_S = 1.0


async def cancel_until_ended(tasks: Iterable[asyncio.Task[None]],
                             recancel_s: float = RECANCEL_S) -> None:
    """Cancel ``tasks``, cancelling again every ``recancel_s`` those that go on, until
    all have ended; their outcomes are collected (never raised)."""
    tasks = list(tasks)
    running = {task for task in tasks if not task.done()}
    for task in running:
        task.cancel()
    while running:
        _, running = await asyncio.wait(running, timeout=recancel_s)
        for task in running:
            log.warning("task %s went on after it was cancelled; cancelling it again",
                        task.get_name())
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
