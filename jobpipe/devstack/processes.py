"""Processes the dev stack owns: started in their own session, tracked by PID file.

A PID file holds the PID and the strings the process's command line must
contain (one or more alternatives: a server may rewrite its process title, as
redis-server does). A PID is trusted only when ``/proc/<pid>/cmdline`` still
contains every string of one alternative, so a reused PID is never
signalled. Processes are only ever ended by their PID, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this Python process, reaped with waitpid (no zombies). They
# are started with posix_spawn, not subprocess.Popen: the stack outlives the
# process that started it (a test run), and a Popen object still running at
# exit raises ResourceWarning, an error under pytest's filterwarnings=error.
_CHILDREN: set[int] = set()


def _reaped(pid: int) -> bool:
    """For a child of ours: True once it has exited (and is now reaped)."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # reaped elsewhere
        done = pid
    if done:
        _CHILDREN.discard(pid)
        return True
    return False


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def poll_until(done: Callable[[], bool], timeout_s: float, interval_s: float) -> bool:
    """Check ``done`` every ``interval_s`` until it holds; False if it did not within
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as dead)."""
    if pid in _CHILDREN and _reaped(pid):
        return False
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline(pid: int) -> bytes:
    """The command line of ``pid`` with NULs as spaces (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.kill(pid, sig)


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` (``VmRSS``), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class OwnedProcess:
    """One long-running process of the stack, known by its PID file.

    Attributes:
        name: for messages, e.g. ``redis`` or ``kafka-1``.
        pid_file: where its PID and command-line markers are kept.
    """

    name: str
    pid_file: Path

    def _record(self) -> tuple[int, list[list[str]]] | None:
        try:
            data = json.loads(self.pid_file.read_text())
            return int(data["pid"]), [[str(m) for m in alt] for alt in data["match"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def pid(self) -> int | None:
        """The PID when the process of our PID file still runs, else None."""
        record = self._record()
        if record is None:
            return None
        pid, alternatives = record
        if not pid_alive(pid):
            return None
        if pid in _CHILDREN:
            # Our unreaped child: its PID cannot have been reused, and its cmdline
            # reads empty mid-exec or while redis-server renames itself.
            return pid
        line = cmdline(pid)
        if not any(all(m.encode() in line for m in alt) for alt in alternatives):
            return None  # the PID was reused by someone else's process
        return pid

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.pid is not None

    def spawn(self, args: Sequence[str], log_path: Path,
              match: Sequence[Sequence[str]]) -> int:
        """Start ``args`` in a new session, output to ``log_path``, and write the PID file.

        Args:
            args: the command.
            log_path: file receiving stdout and stderr (appended).
            match: alternatives, each a list of strings the command line will
                contain while it runs.

        Returns:
            The PID.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        pid = os.posix_spawnp(args[0], list(args), os.environ, file_actions=actions,
                              setsid=True)
        _CHILDREN.add(pid)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "match": [list(alt) for alt in match]}))
        tmp.replace(self.pid_file)
        return pid

    def send(self, sig: signal.Signals) -> bool:
        """Send ``sig`` if the process runs; True when it was sent."""
        pid = self.pid
        if pid is None:
            return False
        _signal(pid, sig)
        return True

    def freeze(self, timeout_s: float = 10.0) -> bool:
        """SIGSTOP and wait until the kernel reports it stopped; True when it was sent."""
        pid = self.pid
        if pid is None:
            return False
        _signal(pid, signal.SIGSTOP)
        poll_until(lambda: _proc_state(pid) in ("T", None), timeout_s, 0.01)
        return True

    def wait_gone(self, pid: int, timeout_s: float) -> bool:
        """Wait until ``pid`` has exited; True when it did in time."""
        return poll_until(lambda: not pid_alive(pid), timeout_s, 0.02)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM (after SIGCONT, should it be frozen), wait, then SIGKILL.

        Returns:
            True when a running process was stopped.
        """
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal(pid, signal.SIGCONT)
        _signal(pid, signal.SIGTERM)
        if not self.wait_gone(pid, timeout_s):
            _signal(pid, signal.SIGKILL)
            self.wait_gone(pid, 30.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL and wait until it is gone; True when a process was killed."""
        pid = self.pid
        if pid is None:
            return False
        _signal(pid, signal.SIGKILL)
        self.wait_gone(pid, 30.0)
        self.pid_file.unlink(missing_ok=True)
        return True


def stop_all(processes: Sequence[OwnedProcess], timeout_s: float = 30.0) -> None:
    """Stop several processes at once: SIGTERM to all first, then wait for each."""
    pids = [(p, p.pid) for p in processes]
    for _proc, pid in pids:
        if pid is not None:
            _signal(pid, signal.SIGCONT)
            _signal(pid, signal.SIGTERM)
    for proc, pid in pids:
        if pid is not None and not proc.wait_gone(pid, timeout_s):
            _signal(pid, signal.SIGKILL)
            proc.wait_gone(pid, 30.0)
        proc.pid_file.unlink(missing_ok=True)
