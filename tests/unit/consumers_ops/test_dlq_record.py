"""DLQ record parsing, filtering, replay rewrite and replay progress."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.dlq.progress import ReplayProgress
from consumers.dlq.record import (
    DlqFilter,
    detail,
    dlq_headers,
    make_record,
    parse_since_ms,
    replayed,
    summary_line,
)
from jobpipe.envelope import Job, decode, encode
from jobpipe.errors import ConfigError

JOB = Job(id="0190-id", queue="q", task="send", attempt=3, max_attempts=3,
          errors=[{"type": "E", "message": "m", "traceback": "", "worker": "w", "at": 1}])


def _record(value: bytes = encode(JOB), ts_ms: int = 1_700_000_000_000):
    return make_record(1, 42, ts_ms, b"k", value, dlq_headers("exhausted", "E: m\ntb", "t", 0, 7))


def test_headers_round_trip_to_reason_error_and_source():
    record = _record()
    assert record.reason == "exhausted"
    assert record.error == "E: m"
    assert record.ref == "1:42"
    assert detail(record)["source"] == {"topic": "t", "partition": "0", "offset": "7"}
    assert detail(record)["job"]["errors"] == JOB.errors


def test_a_record_that_is_not_a_job_is_kept_raw():
    record = _record(b"\xff")
    assert record.job is None
    assert "raw" in detail(record)
    assert " - " in summary_line(record)


def test_summary_line_shows_time_id_task_reason_and_attempts():
    line = summary_line(_record())
    for part in ("1:42", "2023-11-14T22:13:20Z", "0190-id", "send", "exhausted", "3/3"):
        assert part in line


def test_since_accepts_durations_and_iso_times():
    assert parse_since_ms("90s", 100_000) == 10_000
    assert parse_since_ms("2h", 10 * 3_600_000) == 8 * 3_600_000
    assert parse_since_ms("1d", 86_400_000) == 0
    expected = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp() * 1000)
    assert parse_since_ms("2024-01-02T00:00:00", 0) == expected
    assert parse_since_ms("2024-01-02T01:00:00+01:00", 0) == expected


def test_since_refuses_anything_else():
    with pytest.raises(ConfigError, match="--since"):
        parse_since_ms("last tuesday", 0)


def test_filter_matches_task_time_and_refs():
    record = _record()
    assert DlqFilter().matches(record)
    assert DlqFilter(task="send").matches(record)
    assert not DlqFilter(task="bill").matches(record)
    assert not DlqFilter(task="send").matches(_record(b"\xff"))
    assert DlqFilter(since_ms=record.timestamp_ms).matches(record)
    assert not DlqFilter(since_ms=record.timestamp_ms + 1).matches(record)
    for ref in ("0190-id", "1:42", "42"):
        assert DlqFilter(refs=(ref,)).matches(record)
    assert not DlqFilter(refs=("2:42",)).matches(record)
    with pytest.raises(ConfigError):
        DlqFilter(limit=0)


def test_replay_keeps_id_and_errors_resets_attempt_and_counts_replays():
    once = decode(replayed(JOB, 123))
    assert (once.id, once.attempt, once.errors) == (JOB.id, 1, JOB.errors)
    assert once.meta == {"replayed_at": "123", "replays": "1"}
    assert decode(replayed(once, 456)).meta == {"replayed_at": "456", "replays": "2"}
    assert JOB.attempt == 3  # the original is untouched


def test_progress_moves_the_watermark_over_a_done_prefix():
    progress = ReplayProgress(10)
    progress.mark(12)
    progress.mark(13)
    assert (progress.watermark, progress.done) == (10, {12, 13})
    assert progress.is_done(5)
    assert progress.is_done(12)
    assert not progress.is_done(11)
    progress.mark(10)
    progress.mark(11)
    assert (progress.watermark, progress.done) == (14, set())


def test_progress_encodes_ranges_and_decodes_them():
    progress = ReplayProgress(0, {3, 4, 5, 9, 11, 12})
    assert progress.encode() == "3-5,9,11-12"
    assert ReplayProgress.decode(0, "3-5,9,11-12").done == {3, 4, 5, 9, 11, 12}
    assert ReplayProgress.decode(4, "3-5,9").watermark == 6  # 4 and 5 were done too
    assert ReplayProgress.decode(2, "garbage,x-y").done == set()


def test_progress_floor_forgets_purged_records():
    progress = ReplayProgress(2, {5, 8})
    progress.floor(6)
    assert (progress.watermark, progress.done) == (6, {8})


@given(st.sets(st.integers(0, 500), max_size=100), st.integers(0, 50))
def test_progress_round_trips(done, watermark):
    progress = ReplayProgress(watermark)
    for offset in sorted(done):
        progress.mark(offset)
    again = ReplayProgress.decode(progress.watermark, progress.encode())
    assert (again.watermark, again.done) == (progress.watermark, progress.done)
    assert all(again.is_done(o) for o in done)
