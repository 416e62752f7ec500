"""Job ids: UUIDv7 strings, made in bulk, unique and time-ordered.

An id is a standard UUIDv7 (RFC 9562) whose last 48 bits are a counter
(section 6.2, method 1)::

    tttttttt-tttt-7aaa-vbbb-cccccccccccc
    t: 48-bit Unix ms   a, b: 26 random bits (v: variant 10xx)   c: counter

The first id a process makes in a new millisecond draws the random bits and a
random counter start below 2**47 (73 random bits in all, so two processes do
not collide); every later id of that millisecond takes the next counter value.
One process's ids therefore strictly increase, also as strings (fixed-width
lowercase hex), even when the wall clock steps back (the last millisecond is
kept) or a millisecond's counter runs out (the next one is borrowed). Ids of
different processes are ordered by their millisecond.

A batch of ``n`` ids costs one clock read, one lock and one string
concatenation per id: about 60 ns an id against 350 ns for ``uuid_utils.uuid7``.
"""

from __future__ import annotations

import os
import random
import threading
import time

_HEX3 = tuple(f"{i:03x}" for i in range(0x1000))  # the last 3 hex digits of an id
_COUNTER_END = 1 << 48  # the counter is the last 12 hex digits


class _IdClock:
    """The id state of one process (a forked child starts afresh)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Seeded from os.urandom; a draw per millisecond without a syscall (at a
        # low rate every id starts a millisecond: os.urandom took 1.3 us warm, this 0.13).
        self._random = random.Random()
        self._ms = -1
        self._head = ""  # the 24 characters before the counter
        self._next = 0

    def take(self, n: int, now_ns: int | None) -> list[str]:
        ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
        with self._lock:
            if ms > self._ms:
                self._start(ms)
            elif self._next + n > _COUNTER_END:
                self._start(self._ms + 1)
            first, head = self._next, self._head
            self._next = first + n
        if n == 1:
            return [f"{head}{first:012x}"]
        out: list[str] = []
        end = first + n
        while first < end:  # runs of ids that differ only in their last 3 digits
            low = first & 0xFFF
            run = min(end - first, 0x1000 - low)
            out += map(f"{head}{first >> 12:09x}".__add__, _HEX3[low : low + run])
            first += run
        return out

    def _start(self, ms: int) -> None:
        bits = self._random.getrandbits(80)
        rand_a, rand_b = bits & 0xFFF, (bits >> 12) & 0x3FFF
        stamp = f"{ms:012x}"
        self._ms = ms
        self._head = f"{stamp[:8]}-{stamp[8:]}-7{rand_a:03x}-{0x8000 | rand_b:04x}-"
        self._next = bits >> 33  # 47 random bits: room for 2**47 more ids this ms

    def forget(self) -> None:
        """Draw new random bits at the next id: a forked child must not repeat its
        parent's ids."""
        self._lock = threading.Lock()
        self._random = random.Random()
        self._ms = -1


_CLOCK = _IdClock()
os.register_at_fork(after_in_child=_CLOCK.forget)


def new_job_ids(n: int, now_ns: int | None = None) -> list[str]:
    """Return ``n`` fresh ids, each greater than every id this process made before.

    Args:
        n: how many (0 gives an empty list).
        now_ns: the wall clock in ns since the epoch, when the caller read it
            already (the ids then carry the millisecond of ``enqueued_at``).
    """
    if n <= 0:
        return []
    return _CLOCK.take(n, now_ns)
