"""The supervisor's restart delays: doubling from 1 s, capped at 30 s."""

from __future__ import annotations

from jobpipe.supervisor import RESTART_MAX_S, restart_delay_s


def test_delays_double_with_each_failure_in_a_row_up_to_the_cap() -> None:
    assert [restart_delay_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert restart_delay_s(1000) == RESTART_MAX_S
