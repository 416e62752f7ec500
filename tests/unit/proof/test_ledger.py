"""The ledger counts every job: lost, unexpected and duplicate executions."""

from __future__ import annotations

import os
import signal
import time

import pytest

from loadtest.ledger import (
    ACCEPTED,
    DEAD_LETTERED,
    EXECUTED,
    LedgerWriter,
    check_ledger,
    read_role,
)


def _write(directory, role, ids):
    with LedgerWriter(directory, role) as writer:
        writer.record(ids)


def test_clean_run_reports_nothing_lost(tmp_path):
    _write(tmp_path, ACCEPTED, ["a", "b", "c"])
    _write(tmp_path, EXECUTED, ["a", "b", "c"])
    report = check_ledger(tmp_path)
    assert report.ok
    assert (report.accepted, report.executed, report.lost, report.duplicates) == (3, 3, 0, 0)


def test_lost_is_accepted_minus_executed_and_dead_lettered(tmp_path):
    _write(tmp_path, ACCEPTED, ["a", "b", "c", "d"])
    _write(tmp_path, EXECUTED, ["a"])
    report = check_ledger(tmp_path, dead_lettered_ids=["b"])
    assert report.lost == 2
    assert report.lost_ids == ("c", "d")
    assert report.dead_lettered == 1
    assert not report.ok


def test_dead_lettered_role_files_count_like_dlq_ids(tmp_path):
    _write(tmp_path, ACCEPTED, ["a", "b"])
    _write(tmp_path, EXECUTED, ["a"])
    _write(tmp_path, DEAD_LETTERED, ["b"])
    assert check_ledger(tmp_path).lost == 0


def test_unexpected_is_executed_but_never_accepted(tmp_path):
    _write(tmp_path, ACCEPTED, ["a"])
    _write(tmp_path, EXECUTED, ["a", "zz"])
    report = check_ledger(tmp_path)
    assert report.unexpected == 1
    assert report.unexpected_ids == ("zz",)
    assert not report.ok


def test_duplicates_are_executions_beyond_the_first(tmp_path):
    _write(tmp_path, ACCEPTED, ["a", "b"])
    _write(tmp_path, EXECUTED, ["a", "a", "a", "b"])
    _write(tmp_path, EXECUTED, ["b"])  # a second writer: another worker process
    report = check_ledger(tmp_path)
    assert report.executed == 2
    assert report.executions == 5
    assert report.duplicates == 3
    assert report.ok


def test_each_writer_has_its_own_file(tmp_path):
    first = LedgerWriter(tmp_path, EXECUTED)
    second = LedgerWriter(tmp_path, EXECUTED)
    first.record_one("a")
    second.record_one("b")
    first.close()
    second.close()
    assert len(list(tmp_path.glob("executed-*.ids"))) == 2


def test_buffered_ids_are_written_by_the_flusher_without_close(tmp_path):
    writer = LedgerWriter(tmp_path, ACCEPTED, flush_interval_s=0.01)
    writer.record(["a", "b"])
    deadline = time.monotonic() + 10
    while read_role(tmp_path, ACCEPTED)[0].total() < 2:
        assert time.monotonic() < deadline, "the flusher never wrote the ids"
        time.sleep(0.01)
    writer.close()


def test_write_through_survives_kill_9(tmp_path):
    pid = os.fork()
    if pid == 0:  # child: write through, then die without any cleanup
        writer = LedgerWriter(tmp_path, EXECUTED, flush_interval_s=0)
        writer.record(["x", "y"])
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    counts, torn = read_role(tmp_path, EXECUTED)
    assert counts == {"x": 1, "y": 1}
    assert torn == 0


@pytest.mark.parametrize("one_at_a_time", [False, True])
def test_forked_child_writes_its_own_file_not_the_parents_buffer(tmp_path, one_at_a_time):
    # record_one skips os.getpid() per call: the pid is renewed by the fork hook.
    writer = LedgerWriter(tmp_path, EXECUTED, flush_interval_s=60)

    def record(job_id):
        if one_at_a_time:
            writer.record_one(job_id)
        else:
            writer.record([job_id])

    record("parent")
    pid = os.fork()
    if pid == 0:
        record("child")
        writer.close()
        os._exit(0)
    os.waitpid(pid, 0)
    writer.close()
    counts, _ = read_role(tmp_path, EXECUTED)
    assert counts == {"parent": 1, "child": 1}
    assert len(list(tmp_path.glob("executed-*.ids"))) == 2


def test_torn_last_line_is_ignored_and_counted(tmp_path):
    (tmp_path / "executed-1-abc.ids").write_bytes(b"a\nb\npartial-i")
    counts, torn = read_role(tmp_path, EXECUTED)
    assert counts == {"a": 1, "b": 1}
    assert torn == 1


def test_recording_after_close_is_an_error(tmp_path):
    writer = LedgerWriter(tmp_path, ACCEPTED)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.record_one("a")


def test_role_must_be_a_plain_word(tmp_path):
    with pytest.raises(ValueError, match="role"):
        LedgerWriter(tmp_path, "../etc")


def test_report_summary_and_dict_carry_every_figure(tmp_path):
    _write(tmp_path, ACCEPTED, ["a", "b"])
    _write(tmp_path, EXECUTED, ["a", "a"])
    report = check_ledger(tmp_path)
    assert "lost=1" in report.summary()
    assert "duplicates=1" in report.summary()
    assert report.to_dict()["lost_ids"] == ["b"]
