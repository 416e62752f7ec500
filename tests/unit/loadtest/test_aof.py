"""The AOF figures of a load test report: rewrites seen, bytes per job, steps hit."""

from loadtest.aof import (
    AofSample,
    aof_line,
    aof_section,
    bytes_per_job,
    rewrite_starts,
    steps_with_rewrites,
)


def s(size: int, rewrites: int = 0, rewriting: bool = False) -> AofSample:
    return AofSample(size, rewrites, rewriting)


def test_a_rewrite_is_dated_by_the_first_sample_that_counts_it():
    t = [1.0, 2.0, 3.0, 4.0, 5.0]
    samples = [s(100), s(200), None, s(50, 1, True), s(80, 1)]
    assert rewrite_starts(t, samples) == [4.0]
    assert rewrite_starts(t, [s(1), s(2), s(3, 2), s(4, 2), s(5, 3)]) == [3.0, 3.0, 5.0]


def test_bytes_per_job_skips_the_pairs_a_rewrite_touched():
    samples = [s(1_000), s(2_000), s(3_000, 0, True), s(500, 1), s(1_500, 1), None, s(9_999, 1)]
    produced = [0, 10, 20, 30, 40, 50, 60]
    # Counted: 1000 -> 2000 (10 jobs) and 500 -> 1500 (10 jobs); the rest straddle
    # the rewrite or a missing sample.
    assert bytes_per_job(samples, produced) == 100.0
    assert bytes_per_job([s(1), s(2, 0, True)], [0, 5]) is None


def test_steps_a_rewrite_overlapped():
    bounds = [(0.0, 8.0), (8.0, 16.0), (16.0, 24.0)]
    assert steps_with_rewrites(bounds, [12.0]) == [0, 1, 0]
    # Seen just after a step began: it may have started in the step before.
    assert steps_with_rewrites(bounds, [8.5]) == [1, 1, 0]
    assert steps_with_rewrites(bounds, []) == [0, 0, 0]


def test_the_line_names_the_rewrites_and_the_steps():
    section = aof_section([1.0, 2.0, 3.0], [s(0), s(6_000), s(100, 1, True)], [0, 10, 20])
    assert section == {"bytes_per_job": 600.0, "rewrite_starts_s": [3.0]}
    section["steps_offered_per_s"] = [50_000.0]
    assert aof_line(section) == (
        "Redis AOF: 600 bytes appended per job; 1 rewrite(s), first seen at t = 3 s during "
        "the steps of 50,000 jobs/s. The p99 rises while one runs, and it comes back as the "
        "file grows.")
    quiet = aof_section([1.0, 2.0], [s(0), s(100)], [0, 1])
    assert aof_line(quiet) == "Redis AOF: 100 bytes appended per job; no rewrite during the run."


def test_no_section_when_redis_never_said():
    assert aof_section([1.0], [None], [0]) is None
    assert aof_line(None) is None
