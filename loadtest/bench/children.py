"""The benches' forked processes: every wait on them is bounded.

A bench forks stage processes (workers, bridges, producers) that each put one
report on a queue when their run ends. A child that dies before reporting,
never reports, reports that it never saw its queue drained, or does not exit
afterwards fails the run with one line naming it (its pid), instead of a
15-minute wait or a ``queue.Empty`` traceback; :func:`running` leaves no child
running after a failure::

    with running(children, "bridge"):
        rows = reports(children, out, drain_timeout_s(jobs) + EXIT_S, "bridge")
    require_drained(rows, "bridge", drain_timeout_s(jobs))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from queue import Empty
from typing import Protocol, TypeVar

import click

# A stage process starts, joins and drains at MIN_RATE jobs/s at the least (one
# worker process does ~100,000/s and one bridge ~200,000/s on a quiet 2-core
# box); a process that reported may take EXIT_S to exit.
MIN_RATE = 1_000
STARTUP_S = 60.0
EXIT_S = 60.0
POLL_S = 0.5  # how often a wait for reports looks for a child that died


def drain_timeout_s(jobs: int) -> float:
    """How long a stage process may take to drain ``jobs``: far beyond any run that
    works (MIN_RATE is a small fraction of what one process does on a loaded box),
    so that only a stalled run meets it."""
    return STARTUP_S + jobs / MIN_RATE


class Reported(Protocol):
    """A child's report: it names the child."""

    @property
    def pid(self) -> int:
        """The reporting child's pid."""
        ...


class DrainReport(Reported, Protocol):
    """The report of a child that drains a queue until it is idle."""

    @property
    def drained(self) -> bool:
        """Whether the child's run saw its queue drained (not its own timeout)."""
        ...


R = TypeVar("R", bound=Reported)


@contextmanager
def running(children: Sequence[BaseProcess], what: str,
            exit_s: float = EXIT_S) -> Iterator[None]:
    """Start ``children``; once the block is done, wait for each to exit (a ``what``
    process still there ``exit_s`` later fails the run in one line). On the way
    out, after a failure too, none is left running."""
    for child in children:
        child.start()
    try:
        yield
        for child in children:
            child.join(exit_s)
            if child.exitcode is None:
                raise click.ClickException(f"{what} process {child.pid} did not exit within "
                                           f"{exit_s:.0f} s of the end of its run")
    finally:
        for child in children:
            if child.exitcode is None:
                child.kill()
                child.join()


def reports(children: Sequence[BaseProcess], out: Queue[R], timeout_s: float, what: str,
            state: Callable[[], str] | None = None) -> list[R]:
    """One report per child from ``out``.

    Raises in one line (``click.ClickException``, naming the ``what`` process by
    pid) when a child exits before reporting or has not reported within
    ``timeout_s`` (``state()``, if given, tells how things stood).
    """
    got: list[R] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < len(children):
        try:
            got.append(out.get(timeout=POLL_S))
            continue
        except Empty:
            pass
        reported = {r.pid for r in got}
        for child in children:
            # Exit code 0: it may have reported since the get above; the next get sees it.
            if child.exitcode not in (None, 0) and child.pid not in reported:
                raise click.ClickException(f"{what} process {child.pid} exited with code "
                                           f"{child.exitcode} before reporting")
        if time.monotonic() > deadline:
            late = [c.pid for c in children if c.pid not in reported]
            where = f" ({state()})" if state is not None else ""
            raise click.ClickException(f"{what} processes {late} did not report within "
                                       f"{timeout_s:.0f} s{where}")
    return got


def require_drained(got: Sequence[DrainReport], what: str, timeout_s: float) -> None:
    """Raise in one line if a child reported that it never saw its queue drained."""
    for report in got:
        if not report.drained:
            raise click.ClickException(f"{what} process {report.pid} did not see the queue "
                                       f"drained within {timeout_s:.0f} s")
