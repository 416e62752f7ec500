"""cancel_until_ended: a task that absorbed its cancel (as redis-py can) is
cancelled again until it has ended, so a worker's shutdown cannot wait forever."""

from __future__ import annotations

import asyncio
import contextlib

from consumers.cancelling import cancel_until_ended

DEADLINE_S = 60.0  # generous: the cancels take milliseconds


async def _absorbs_first_cancels(absorb: int, ended: list[str]) -> None:
    """Goes on after its first ``absorb`` cancels, as a loop around redis-py calls
    whose command swallowed the cancel."""
    for _ in range(absorb):
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
    try:
        await asyncio.sleep(3600)
    finally:
        ended.append("ended")


async def test_a_task_that_absorbed_its_cancels_is_cancelled_until_it_ends() -> None:
    ended: list[str] = []
    stubborn = asyncio.create_task(_absorbs_first_cancels(3, ended))
    plain = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)  # both are waiting
    await asyncio.wait_for(cancel_until_ended([stubborn, plain], recancel_s=0.01), DEADLINE_S)
    assert ended == ["ended"]
    assert stubborn.cancelled()
    assert plain.cancelled()


async def test_tasks_already_ended_are_collected_without_raising() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fails())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.wait({failed, done})
    await asyncio.wait_for(cancel_until_ended([failed, done]), DEADLINE_S)
    assert isinstance(failed.exception(), ValueError)
