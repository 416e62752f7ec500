"""CPU per process: reading /proc, cores and µs per job over a window."""

import os
import socket
import subprocess
import sys
import time

from loadtest.cpu import (
    CpuSampler,
    CpuSeries,
    counts_reaped_children,
    cpu_seconds,
    listening_pid,
    total_row,
    window_usage,
)


def test_cpu_seconds_of_this_process_grow_with_work():
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    after = cpu_seconds(os.getpid())
    assert before is not None
    assert after is not None
    assert after > before


def test_cpu_seconds_of_a_missing_process_is_none():
    assert cpu_seconds(2**22 + 12345) is None


def test_the_listening_pid_is_found_by_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert listening_pid(server.getsockname()[1]) == os.getpid()


def test_window_usage_gives_cores_and_us_per_job():
    series = CpuSeries([0.0, 1.0, 2.0, 3.0, 4.0],
                       {"worker-0": [10.0, 10.5, 11.0, 11.5, 12.0],
                        "redis": [1.0, 1.2, 1.4, 1.6, 1.8]})
    rows = {r.name: r for r in window_usage(series, 0, 4, jobs=40_000)}
    assert rows["worker-0"].cores == 0.5
    assert rows["worker-0"].us_per_job == 2.0 * 1e6 / 40_000  # 50 µs
    assert abs(rows["redis"].us_per_job - 20.0) < 1e-9


def test_window_usage_uses_only_samples_inside_the_window():
    series = CpuSeries([0.0, 1.0, 2.0, 3.0],
                       {"bridge-0": [0.0, 5.0, 5.25, 5.5]})  # a burst before second 1
    (row,) = window_usage(series, 1, 3, jobs=1000)
    assert row.cores == 0.25


def test_a_process_sampled_once_in_the_window_is_left_out():
    series = CpuSeries([0.0, 1.0], {"worker-0": [None, 3.0]})
    assert window_usage(series, 0, 1, jobs=10) == []


def test_the_total_leaves_the_runner_out():
    series = CpuSeries([0.0, 1.0], {"worker-0": [0.0, 0.4], "runner": [0.0, 0.3]})
    rows = window_usage(series, 0, 1, jobs=10_000)
    total = total_row(rows, frozenset({"runner"}))
    assert total.cores == 0.4
    assert abs(total.us_per_job - 40.0) < 1e-9


def test_a_restarted_process_keeps_the_cpu_of_its_earlier_pid():
    pids = {"worker-0": os.getpid()}
    sampler = CpuSampler(lambda: dict(pids), start_s=time.time(), interval_s=3600)
    first = sampler.series.cpu_s["worker-0"][-1]
    pids["worker-0"] = os.getppid()  # "restarted" as another live process
    sampler.sample()
    series = sampler.stop()
    assert first is not None
    assert all(v is not None and v >= first for v in series.cpu_s["worker-0"][1:])


def _burn_in_a_child(cpu_s: float) -> None:
    """Run a child that spins for ``cpu_s`` of CPU, and wait for it (reap it)."""
    subprocess.run([sys.executable, "-c",
                    f"import time\nend = time.process_time() + {cpu_s}\n"
                    "while time.process_time() < end: pass"], check=True)


def test_reaped_children_count_only_when_asked():
    own_before = cpu_seconds(os.getpid())
    all_before = cpu_seconds(os.getpid(), reaped_children=True)
    _burn_in_a_child(0.3)
    own_after = cpu_seconds(os.getpid())
    all_after = cpu_seconds(os.getpid(), reaped_children=True)
    assert own_before is not None
    assert all_before is not None
    assert own_after is not None
    assert all_after is not None
    assert (all_after - all_before) - (own_after - own_before) >= 0.25  # the child's 0.3 s


def test_the_sampler_counts_children_for_the_names_it_is_told():
    sampler = CpuSampler(lambda: {"redis": os.getpid(), "worker-0": os.getpid()}, time.time(),
                         interval_s=60, with_children=counts_reaped_children)
    _burn_in_a_child(0.3)
    series = sampler.stop()
    redis_cpu = [v for v in series.cpu_s["redis"] if v is not None]
    worker_cpu = [v for v in series.cpu_s["worker-0"] if v is not None]
    assert (redis_cpu[-1] - redis_cpu[0]) - (worker_cpu[-1] - worker_cpu[0]) >= 0.25


def test_only_redis_is_charged_its_children():
    assert counts_reaped_children("redis")
    assert counts_reaped_children("redis-7001")
    assert not counts_reaped_children("runner")
    assert not counts_reaped_children("worker-0")
