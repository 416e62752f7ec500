"""The AOF figures of a load test report: rewrites seen, bytes per job, steps hit."""

from loadtest.aof import (
    AofSample,
    aof_line,
    aof_section,
    bytes_per_job,
    rewrite_spans,
    steps_with_rewrites,
)


def s(size: int, rewrites: int = 0, rewriting: bool = False, nodes: str = "") -> AofSample:
    return AofSample(size, rewrites, rewriting, nodes)


def test_a_rewrite_spans_from_the_last_sample_before_it_to_the_first_after_it():
    t = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # Samples at 3 failed: the rewrite counted at 4 may have started after 2.
    samples = [s(100), s(200), None, s(50, 1, True), s(60, 1, True), s(80, 1)]
    assert rewrite_spans(t, samples) == [(2.0, 6.0)]
    # Started and ended between two samples; two in one second; one still running.
    assert rewrite_spans(t[:5], [s(1), s(2), s(3, 2), s(4, 2), s(5, 3, True)]) == [
        (2.0, 3.0), (2.0, 3.0), (4.0, 5.0)]


def test_a_fail_over_or_a_restart_is_not_a_rewrite():
    t = [1.0, 2.0, 3.0]
    # A promoted replica brings its own count; a restarted Redis counts from 0.
    assert rewrite_spans(t, [s(100, 0, nodes="a,b"), s(900, 1, nodes="a,c"),
                             s(950, 1, nodes="a,c")]) == []
    assert rewrite_spans(t, [s(100, 3), s(10, 0), s(20, 0)]) == []


def test_bytes_per_job_skips_the_pairs_a_rewrite_touched():
    samples = [s(1_000), s(2_000), s(3_000, 0, True), s(500, 1), s(1_500, 1), None, s(9_999, 1)]
    produced = [0, 10, 20, 30, 40, 50, 60]
    # Counted: 1000 -> 2000 (10 jobs) and 500 -> 1500 (10 jobs); the rest straddle
    # the rewrite or a missing sample.
    assert bytes_per_job(samples, produced) == 100.0
    assert bytes_per_job([s(1), s(2, 0, True)], [0, 5]) is None
    # A rewrite that started and ended between two samples, or a fail-over.
    assert bytes_per_job([s(1_000), s(5_000, 1)], [0, 10]) is None
    assert bytes_per_job([s(1_000, nodes="a"), s(5_000, nodes="b")], [0, 10]) is None


def test_steps_a_rewrite_overlapped():
    bounds = [(0.0, 8.0), (8.0, 16.0), (16.0, 24.0)]
    assert steps_with_rewrites(bounds, [(11.0, 13.0)]) == [0, 1, 0]
    assert steps_with_rewrites(bounds, [(7.0, 9.0)]) == [1, 1, 0]
    # After a gap in the samples: anywhere from 2 to 17.
    assert steps_with_rewrites(bounds, [(2.0, 17.0)]) == [1, 1, 1]
    assert steps_with_rewrites(bounds, []) == [0, 0, 0]


def test_the_line_names_the_rewrites_and_the_steps():
    section = aof_section([1.0, 2.0, 3.0], [s(0), s(6_000), s(100, 1, True)], [0, 10, 20])
    assert section == {"bytes_per_job": 600.0, "rewrites_s": [[2.0, 3.0]]}
    section["steps_offered_per_s"] = [50_000.0]
    assert aof_line(section) == (
        "Redis AOF: 600 bytes appended per job; 1 rewrite(s), running within t = 2-3 s during "
        "the steps of 50,000 jobs/s. The p99 rises while one runs, and it comes back as the "
        "file grows.")
    quiet = aof_section([1.0, 2.0], [s(0), s(100)], [0, 1])
    assert aof_line(quiet) == "Redis AOF: 100 bytes appended per job; no rewrite during the run."


def test_no_section_when_redis_never_said():
    assert aof_section([1.0], [None], [0]) is None
    assert aof_line(None) is None
