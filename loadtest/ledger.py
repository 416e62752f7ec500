"""The ledger: count every job, so "nothing accepted is lost" can be checked.

In the spirit of Jepsen's total-queue check, each role appends the job ids it
saw to its own file: producers record what they were told was **accepted**,
handlers record every **executed** attempt, and the dead-letter topic holds
what was **dead-lettered**. :func:`check_ledger` then reports::

    lost        = accepted - (executed | dead_lettered)   must be 0
    unexpected  = executed - accepted                    ran but never accepted
    duplicates  = executions beyond the first per id      bounded, not zero

Files are ``<role>-<pid>-<random>.ids``, one id per line, so any number of
processes (and forks) append without sharing a file or a lock. A writer buffers
ids and writes them every ``flush_interval_s`` (0.2 s) from a daemon thread and
on :meth:`LedgerWriter.close`, which also fsyncs. A ``write()`` survives a
``kill -9`` of the writer (the page cache keeps it), so only ids recorded in
the last interval are at risk; chaos tests that kill handlers pass
``flush_interval_s=0`` to write each id before the handler returns. A line torn
by a kill (no trailing newline) is ignored and counted as ``torn``.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobpipe.settings import Settings

ACCEPTED = "accepted"
EXECUTED = "executed"
DEAD_LETTERED = "dead_lettered"
SUFFIX = ".ids"
DEFAULT_FLUSH_INTERVAL_S = 0.2
SAMPLE_IDS = 20

_WRITERS: weakref.WeakSet[LedgerWriter] = weakref.WeakSet()


# This process's id, renewed in a forked child: a handler records an id per
# job, and os.getpid() is a system call each time.
_pid = os.getpid()


def _reset_locks_after_fork() -> None:
    # A fork while the flusher thread holds a lock would leave it held forever
    # in the child; give every writer a fresh lock there.
    global _pid
    _pid = os.getpid()
    for writer in list(_WRITERS):
        writer._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)


class LedgerWriter:
    """Appends job ids of one role to this process's own ledger file.

    Thread-safe; fork-safe (a child opens its own file on its first record).

    Args:
        directory: the ledger directory, shared by every process of a run.
        role: ``accepted``, ``executed`` or ``dead_lettered``.
        flush_interval_s: how often buffered ids are written; ``0`` writes
            each id at once (for handlers that may be killed mid-run).
    """

    def __init__(self, directory: str | Path, role: str,
                 flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        if not role or not role.replace("_", "").isalnum():
            raise ValueError(f"ledger role {role!r} must be letters, digits and '_'")
        self.directory = Path(directory)
        self.role = role
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._fd: int | None = None
        self._path = self.directory / "unopened"
        self._pid = -1
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        _WRITERS.add(self)
        atexit.register(self.close)

    @property
    def path(self) -> Path | None:
        """This process's file, once something was written."""
        return self._path if self._fd is not None else None

    def record(self, ids: Iterable[str]) -> None:
        """Append job ids (buffered)."""
        with self._lock:
            self._ensure_process()
            self._buffer.extend(ids)
            if self.flush_interval_s <= 0:
                self._write_locked()

    def record_one(self, job_id: str) -> None:
        """Append one job id (buffered)."""
        with self._lock:
            self._ensure_process()
            self._buffer.append(job_id)
            if self.flush_interval_s <= 0:
                self._write_locked()

    def flush(self) -> None:
        """Write buffered ids to the file now (no fsync)."""
        with self._lock:
            self._write_locked()

    def close(self) -> None:
        """Write what is buffered, fsync and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pid == os.getpid():
                self._write_locked()
                if self._fd is not None:
                    os.fsync(self._fd)
                    os.close(self._fd)
            self._fd = None
        self._wake.set()
        atexit.unregister(self.close)

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------

    def _ensure_process(self) -> None:
        """On first use in a process (or after a fork), start afresh."""
        if self._closed:
            raise ValueError(f"ledger writer for {self.role!r} is closed")
        pid = _pid
        if pid == self._pid:
            return
        # A forked child must not write the parent's buffer or share its file.
        self._pid = pid
        self._buffer = []
        self._path = self.directory / f"{self.role}-{pid}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self.flush_interval_s > 0:
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._flush_loop, daemon=True,
                                            name=f"ledger-{self.role}")
            self._thread.start()

    def _write_locked(self) -> None:
        if not self._buffer or self._fd is None:
            return
        data = ("\n".join(self._buffer) + "\n").encode()
        self._buffer = []
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _flush_loop(self) -> None:
        while not self._wake.wait(self.flush_interval_s):
            with self._lock:
                if self._closed or self._pid != os.getpid():
                    return
                self._write_locked()


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """What the ledger says about one run.

    Counts are of distinct job ids except ``executions`` (every attempt) and
    ``duplicates`` (executions beyond the first of each id).
    """

    accepted: int
    executed: int
    dead_lettered: int
    lost: int
    unexpected: int
    duplicates: int
    executions: int = 0
    torn: int = 0
    lost_ids: tuple[str, ...] = field(default=())
    unexpected_ids: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No job lost and none executed that was never accepted."""
        return self.lost == 0 and self.unexpected == 0

    def summary(self) -> str:
        """One line with every figure, for logs and test output."""
        return (f"accepted={self.accepted} executed={self.executed} "
                f"executions={self.executions} dead_lettered={self.dead_lettered} "
                f"lost={self.lost} unexpected={self.unexpected} "
                f"duplicates={self.duplicates} torn={self.torn}")

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (samples of lost/unexpected ids included)."""
        return {"accepted": self.accepted, "executed": self.executed,
                "executions": self.executions, "dead_lettered": self.dead_lettered,
                "lost": self.lost, "unexpected": self.unexpected,
                "duplicates": self.duplicates, "torn": self.torn,
                "lost_ids": list(self.lost_ids), "unexpected_ids": list(self.unexpected_ids)}


def read_role(directory: str | Path, role: str) -> tuple[Counter[str], int]:
    """Every id recorded under ``role`` with its count, and the number of torn lines."""
    counts: Counter[str] = Counter()
    torn = 0
    for path in sorted(Path(directory).glob(f"{role}-*{SUFFIX}")):
        data = path.read_bytes()
        lines = data.split(b"\n")
        if lines and lines[-1]:
            torn += 1  # written up to a kill -9 mid-line: not a whole id
        counts.update(line.decode("utf-8", "replace") for line in lines[:-1] if line)
    return counts, torn


def check_ledger(directory: str | Path, dead_lettered_ids: Iterable[str] = ()) -> LedgerReport:
    """Compare what was accepted with what was executed or dead-lettered.

    Args:
        directory: the ledger directory of the run.
        dead_lettered_ids: ids read from the dead-letter topics (see
            :func:`dead_lettered_ids_from_kafka`); ids recorded under the
            ``dead_lettered`` role are added to them.
    """
    accepted_counts, torn_a = read_role(directory, ACCEPTED)
    executed_counts, torn_e = read_role(directory, EXECUTED)
    dead_counts, torn_d = read_role(directory, DEAD_LETTERED)
    accepted = set(accepted_counts)
    executed = set(executed_counts)
    dead = set(dead_counts).union(dead_lettered_ids)
    lost = accepted - executed - dead
    unexpected = executed - accepted
    executions = sum(executed_counts.values())
    return LedgerReport(
        accepted=len(accepted),
        executed=len(executed),
        dead_lettered=len(dead),
        lost=len(lost),
        unexpected=len(unexpected),
        duplicates=executions - len(executed),
        executions=executions,
        torn=torn_a + torn_e + torn_d,
        lost_ids=tuple(sorted(lost)[:SAMPLE_IDS]),
        unexpected_ids=tuple(sorted(unexpected)[:SAMPLE_IDS]),
    )


def dead_lettered_ids_from_kafka(settings: Settings, queues: Iterable[str] | None = None,
                                 timeout_s: float = 30.0) -> set[str]:
    """The ids of every job in the dead-letter topics of ``queues`` (all when None).

    Reads each DLQ topic from its start to its current end, without a consumer
    group. Undecodable records (bad input, never accepted) carry no id and are
    left out; see :func:`loadtest.dead_letters.read_dead_letters` for them.

    Raises:
        KafkaUnavailable: the broker did not answer within ``timeout_s``.
    """
    from loadtest.dead_letters import read_dead_letters

    return {d.job_id for d in read_dead_letters(settings, queues, timeout_s)
            if d.job_id is not None}
