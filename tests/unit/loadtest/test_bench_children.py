"""The benches' forked processes (bench bridge, scaleout, worker): a child that never
reports, never exits or never drained fails the run in one line naming it, and
none is left running."""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.process import BaseProcess
from typing import Any

import click
import pytest

from loadtest.bench.bridge import BridgeRow
from loadtest.bench.children import reports, require_drained, running
from loadtest.bench.scaleout import ProducerRow

GENEROUS_S = 120.0  # for children that do report: only a broken run meets it
SHORT_S = 1.0  # for children that never will: how long the test waits for nothing


def _reports_then(out: Any, then_s: float) -> None:
    out.put(ProducerRow(os.getpid(), 10, 0.1, 0.1))
    time.sleep(then_s)


def _hangs(out: Any) -> None:
    time.sleep(3600)


def _never_drained(out: Any) -> None:
    out.put(BridgeRow(os.getpid(), False, 0.0, 0.0, 0, 0.0))


def _children(target: Any, n: int, *args: Any) -> tuple[list[BaseProcess], Any]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    return [ctx.Process(target=target, args=(out, *args)) for _ in range(n)], out


def test_every_child_reports_and_exits() -> None:
    children, out = _children(_reports_then, 2, 0.0)
    with running(children, "producer"):
        got = reports(children, out, GENEROUS_S, "producer")
    assert sorted(r.pid for r in got) == sorted(c.pid for c in children)
    assert all(c.exitcode == 0 for c in children)


def test_a_child_that_never_reports_fails_the_run_naming_it_and_is_killed() -> None:
    children, out = _children(_hangs, 1)
    with pytest.raises(click.ClickException) as failed, running(children, "bridge"):
        reports(children, out, SHORT_S, "bridge", lambda: "lists not empty")
    assert failed.value.message == (f"bridge processes [{children[0].pid}] did not report "
                                    f"within {SHORT_S:.0f} s (lists not empty)")
    assert children[0].exitcode is not None  # killed, not left running


def test_a_child_that_reports_but_never_exits_fails_the_run_and_is_killed() -> None:
    children, out = _children(_reports_then, 1, 3600.0)
    with (pytest.raises(click.ClickException) as failed,
          running(children, "producer", exit_s=SHORT_S)):
        reports(children, out, GENEROUS_S, "producer")
    assert failed.value.message == (f"producer process {children[0].pid} did not exit within "
                                    f"{SHORT_S:.0f} s of the end of its run")
    assert children[0].exitcode is not None


def test_a_bridge_that_never_saw_its_queue_drained_fails_the_run() -> None:
    children, out = _children(_never_drained, 1)
    with running(children, "bridge"):
        got = reports(children, out, GENEROUS_S, "bridge")
    with pytest.raises(click.ClickException,
                       match=f"bridge process {children[0].pid} did not see the queue drained"):
        require_drained(got, "bridge", GENEROUS_S)
