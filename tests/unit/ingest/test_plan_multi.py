"""A plain plan framed as one MULTI transaction: the same RESP hiredis would pack."""

from __future__ import annotations

import hiredis
import pytest
import redis.exceptions

from ingest.intake import Intake
from ingest.plan import MULTI_CHUNK_JOBS, PushPlan
from jobpipe.settings import load_settings


def _plan(lists: list[tuple[str, list[bytes]]], backlog_keys: int) -> PushPlan:
    keys = [key for key, _ in lists][:backlog_keys]
    ids = [str(i) for _, jobs in lists for i in range(len(jobs))]
    return PushPlan("q", keys, [], ids, lists=lists, backlog_keys=backlog_keys)


def _commands(wire: bytes) -> list[list[bytes]]:
    reader = hiredis.Reader()
    reader.feed(wire)
    out = []
    while (command := reader.gets()) is not False:
        out.append(command)
    return out


def test_the_transaction_counts_then_pushes_every_list_in_order() -> None:
    jobs = [b'{"n":%d}' % i + b"x" * (i % 7) for i in range(2 * MULTI_CHUNK_JOBS + 3)]
    plan = _plan([("ns:{q}:ready:0", jobs), ("ns:{q}:ready:\u00e9", [b"", b"\r\n"])], 2)
    pieces = list(plan.multi_commands())
    wire = b"".join(pieces)
    expected = ([[b"MULTI"], [b"LLEN", b"ns:{q}:ready:0"],
                 [b"LLEN", "ns:{q}:ready:\u00e9".encode()]]
                + [[b"LPUSH", b"ns:{q}:ready:0", *jobs[s : s + MULTI_CHUNK_JOBS]]
                   for s in range(0, len(jobs), MULTI_CHUNK_JOBS)]
                + [[b"LPUSH", "ns:{q}:ready:\u00e9".encode(), b"", b"\r\n"], [b"EXEC"]])
    assert _commands(wire) == expected
    assert wire == b"".join(hiredis.pack_command(tuple(command)) for command in expected)
    assert plan.multi_replies() == len(expected)
    assert len(pieces) == len(expected) - 2  # MULTI and both LLENs go as one piece


def test_the_backlog_is_the_sum_of_the_counted_lists() -> None:
    plan = _plan([("a", [b"1"]), ("b", [b"2"])], 2)
    assert plan.multi_backlog([b"OK", b"QUEUED", b"QUEUED", b"QUEUED", b"QUEUED",
                               [3, 4, 4, 5]]) == 7


def test_an_error_while_queueing_is_raised_not_the_exec_abort() -> None:
    plan = _plan([("a", [b"1"])], 1)
    oom = redis.exceptions.OutOfMemoryError("command not allowed when used memory > "
                                            "'maxmemory'.")
    abort = redis.exceptions.ExecAbortError("Transaction discarded")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        plan.multi_backlog([b"OK", b"QUEUED", oom, abort])


def test_an_error_inside_exec_is_raised() -> None:
    plan = _plan([("a", [b"1"])], 1)
    wrong = redis.exceptions.ResponseError("WRONGTYPE Operation against a key")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        plan.multi_backlog([b"OK", b"QUEUED", b"QUEUED", [0, wrong]])


def test_the_transaction_raises_the_wake_up_last() -> None:
    plan = _plan([("a", [b"1"])], 1)
    plan.wake = "ns:{q}:wake"
    expected = [[b"MULTI"], [b"LLEN", b"a"], [b"LPUSH", b"a", b"1"],
                [b"ZADD", b"ns:{q}:wake", b"0", b"w"], [b"EXEC"]]
    assert _commands(b"".join(plan.multi_commands())) == expected
    assert plan.multi_replies() == len(expected)
    assert plan.multi_backlog([b"OK", b"QUEUED", b"QUEUED", b"QUEUED", [2, 3, 0]]) == 2


def test_the_core_reads_a_multi_push_as_backlog_or_as_full_at_maxmemory() -> None:
    intake = Intake(load_settings(None, environ={}))
    plan = _plan([("a", [b"1"])], 1)
    reply = intake.multi_reply(plan, [b"OK", b"QUEUED", b"QUEUED", [3, 4]])
    assert (reply.full, reply.backlog) == (False, 3)
    oom = redis.exceptions.OutOfMemoryError("command not allowed when used memory > "
                                            "'maxmemory'.")
    reply = intake.multi_reply(plan, [b"OK", b"QUEUED", oom,
                                      redis.exceptions.ExecAbortError("Transaction discarded")])
    assert reply.full
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        intake.multi_reply(plan, [b"OK", b"QUEUED", b"QUEUED", [0, redis.exceptions.ResponseError(
            "WRONGTYPE Operation against a key")]])


def test_the_state_records_of_tracked_jobs_are_set_in_the_same_transaction() -> None:
    ids = ["01a23779-5814-7ecf-9e5d-07efb34dd69a", "j\u00e9"]
    plan = PushPlan("q", [], [], ids, lists=[("ns:{q}:ready:0", [b"a", b"b"])],
                    records=[("ns:{q}:jobs:01a23779-58", 86400, "1||queued|1|5|", ids)])
    key, record = b"ns:{q}:jobs:01a23779-58", b"1||queued|1|5|"
    push = [[b"MULTI"], [b"LPUSH", b"ns:{q}:ready:0", b"a", b"b"]]
    end = [[b"EXPIRE", key, b"86400"], [b"EXEC"]]
    # A first attempt: the ids are new, one HSET sets every record.
    fresh = [*push, [b"HSET", key, *(part for i in ids for part in (i.encode(), record))], *end]
    # A call that may have run: a record a later stage moved on must stay as it is.
    again = [*push, *([b"HSETNX", key, i.encode(), record] for i in ids), *end]
    for expected in (fresh, again):
        wire = b"".join(plan.multi_commands())
        assert _commands(wire) == expected
        assert wire == b"".join(hiredis.pack_command(tuple(command)) for command in expected)
        assert plan.multi_replies() == len(expected)
        plan.may_have_run()
