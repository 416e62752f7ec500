"""Worker fail-over figures from partition traces: written by the trace, read back,
and reduced to "kill -> ran elsewhere" and "restart -> ran again"."""

from loadtest.failover import handover, median_or_none, owned_at, summarize_handovers
from loadtest.partition_trace import PartitionTrace, Trace, read_traces

START_MS = 1_000_000
DEAD, SURVIVOR, RESTARTED = 11, 22, 33


def ms(t_s: float) -> int:
    return START_MS + int(t_s * 1000)


def traces(ready: dict[int, float] | None = None, **runs: list) -> dict[int, Trace]:
    """Traces by pid from ``pid_<n>=[(t_s, partition), ...]`` and ready times in s."""
    out = {}
    for name, items in runs.items():
        pid = int(name.removeprefix("pid_"))
        out[pid] = Trace(None, sorted((ms(t), ("t", part)) for t, part in items))
    for pid, t in (ready or {}).items():
        out.setdefault(pid, Trace()).ready_ms = ms(t)
    return out


def kill_at(t_s: float, restart_s: float | None = None) -> dict:
    return {"t_s": t_s, "target": "worker-0", "pid": DEAD, "restarted_pid": RESTARTED,
            "restarted_t_s": restart_s}


def test_trace_writes_once_per_tick_and_reads_back_by_pid(tmp_path):
    trace = PartitionTrace(tmp_path)
    trace.ready(900)
    for now in (1000, 1050, 1099, 1100, 1150):
        trace.ran("jp.q", 3, now)
    trace.ran("jp.q", 4, 1050)
    trace.close()
    trace.close()

    (pid, read), = read_traces(tmp_path).items()

    assert pid == int(trace.path.stem.removeprefix("worker-"))
    assert read.ready_ms == 900
    assert read.runs == [(1000, ("jp.q", 3)), (1050, ("jp.q", 4)), (1100, ("jp.q", 3))]


def test_a_line_torn_by_a_kill_is_skipped(tmp_path):
    trace = PartitionTrace(tmp_path)
    trace.ran("jp.q", 0, 5000)
    trace.close()
    with trace.path.open("ab") as fh:
        fh.write(b"5100 jp.q")

    assert list(read_traces(tmp_path).values()) == [Trace(None, [(5000, ("jp.q", 0))])]


def test_owned_partitions_are_those_it_ran_last_before_the_kill():
    t = traces(pid_11=[(9.0, 0), (9.5, 1), (5.0, 2)], pid_22=[(9.2, 0), (9.9, 3)])

    # t/0 moved to the survivor before the kill; t/2 is older than RECENT_S.
    assert owned_at(t, DEAD, ms(10.0)) == {("t", 1)}


def test_failover_is_when_the_last_of_its_partitions_ran_elsewhere():
    t = traces({RESTARTED: 12.5}, pid_11=[(9.8, 0), (9.9, 1)],
               pid_22=[(9.9, 2), (14.0, 0), (17.5, 1)], pid_33=[(13.0, 2)])

    h = handover(t, START_MS, kill_at(10.0, restart_s=11.0))

    assert (h.partitions, h.failover_s, h.taken_by_restart) == (2, 7.5, 0)
    assert (h.back_s, h.start_s, h.join_s) == (2.0, 1.5, 0.5)


def test_partitions_taken_back_by_the_restart_count_as_failed_over():
    t = traces(pid_11=[(9.8, 0)], pid_22=[(9.9, 1)], pid_33=[(12.5, 0)])

    h = handover(t, START_MS, kill_at(10.0, restart_s=11.0))

    assert (h.failover_s, h.back_s, h.start_s, h.taken_by_restart) == (2.5, 1.5, None, 1)


def test_a_partition_that_never_ran_again_leaves_failover_unknown():
    t = traces({RESTARTED: 12.0}, pid_11=[(9.8, 0), (9.8, 1)], pid_22=[(12.0, 0)])

    h = handover(t, START_MS, kill_at(10.0, restart_s=11.0))

    assert (h.partitions, h.failover_s, h.back_s, h.start_s, h.join_s) == (2, None, None, 1.0,
                                                                            None)


def test_medians_skip_idle_kills_but_not_unknown_ones():
    busy = handover(traces(pid_11=[(9.8, 0)], pid_22=[(13.0, 0)]), START_MS,
                    kill_at(10.0, restart_s=11.0))
    idle = handover(traces(pid_22=[(9.0, 0)]), START_MS, kill_at(10.0, 11.0))

    summary = summarize_handovers([busy, idle])

    assert summary["failover_s_median"] == 3.0
    assert summary["back_s_median"] is None
    assert len(summary["each"]) == 2
    assert median_or_none([1.0, None, 2.0]) is None
    assert median_or_none([3.0, 1.0, 2.0]) == 2.0
