"""bench worker: a worker process that dies or never drains fails the run in one
line instead of leaving the bench waiting."""

from __future__ import annotations

import multiprocessing
import os
import sys
from typing import Any

import click
import pytest

from loadtest.bench.worker import Report, _reports

TIMEOUT_S = 120.0  # generous: both children end at once


def _dies(out: Any) -> None:
    sys.exit(3)


def _never_drained(out: Any) -> None:
    out.put(Report(os.getpid(), False, 0, 0.0, 0.0))


def _run(target: Any) -> list[Report]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=target, args=(out,))
    child.start()
    try:
        return _reports([child], out, None, TIMEOUT_S)  # type: ignore[arg-type]
    finally:
        child.join()


def test_a_child_that_dies_before_reporting_fails_the_run() -> None:
    with pytest.raises(click.ClickException, match="exited with code 3 before reporting"):
        _run(_dies)


def test_a_child_that_never_saw_the_queue_drained_fails_the_run() -> None:
    with pytest.raises(click.ClickException, match="did not see the queue drained"):
        _run(_never_drained)
