"""The processes a load test starts, stops, kills and restarts, each by its PID.

Producers (``python -m loadtest.sender``), bridges (``jobpipe bridge``) and
workers (``jobpipe worker loadtest.tasks:app``) run as subprocesses with the
run's ``jobpipe.toml`` in ``JOBPIPE_CONFIG``; each writes its output to
``<run_dir>/logs/<name>.log``. Nothing is ever signalled by name.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0


@dataclass
class Managed:
    """One process of the run (and its restarts).

    Attributes:
        name: ``bridge-0``, ``worker-1``, ``producer-0`` ...
        kind: ``bridge``, ``worker``, ``producer``, ``celery`` ...
        argv: the command line.
        env: the full environment it runs with.
        log_path: where its stdout and stderr go.
        proc: the running process (the latest one after restarts).
        pids: every PID it had, first first.
    """

    name: str
    kind: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    terminating: bool = False

    @property
    def pid(self) -> int | None:
        """The current PID, or None when not running."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        """Start (or start again) the process."""
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.pids.append(self.proc.pid)
        self.terminating = False
        log.debug("started %s pid %d", self.name, self.proc.pid)

    def kill(self) -> int | None:
        """SIGKILL the process (and reap it); its PID, or None if it was not running."""
        pid = self.pid
        if pid is None or self.proc is None:
            return None
        # The process is its own session leader: kill -9 its group, so a
        # ``--processes N`` parent's children die with it, as on a crashed host.
        os.killpg(pid, signal.SIGKILL)
        self.proc.wait()
        return pid

    def terminate(self) -> None:
        """SIGTERM once (a second SIGTERM tells a worker to drop its jobs and exit)."""
        if self.proc is not None and self.proc.poll() is None and not self.terminating:
            self.terminating = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %ss; killing it", self.name, timeout_s)
                self.kill()
        return self.proc.returncode


class Fleet:
    """Every process of one run.

    Args:
        run_dir: the run folder (logs go to ``logs/``).
        env: environment every process gets (the run's config, recording paths).
    """

    def __init__(self, run_dir: str | Path, env: dict[str, str]) -> None:
        self.run_dir = Path(run_dir)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.env = env
        self.members: list[Managed] = []

    def launch(self, kind: str, index: int, argv: list[str],
               extra_env: dict[str, str] | None = None) -> Managed:
        """Start one process and keep track of it."""
        name = f"{kind}-{index}"
        member = Managed(name, kind, argv, {**self.env, **(extra_env or {})},
                         self.run_dir / "logs" / f"{name}.log")
        member.start()
        self.members.append(member)
        return member

    def of_kind(self, kind: str) -> list[Managed]:
        """The processes of one kind."""
        return [m for m in self.members if m.kind == kind]

    def wait_for(self, kind: str, timeout_s: float) -> bool:
        """Wait until every process of ``kind`` exited; False on timeout."""
        deadline = time.monotonic() + timeout_s
        for member in self.of_kind(kind):
            if member.proc is None:
                continue
            try:
                member.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, kinds: list[str] | None = None, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the processes of ``kinds`` (all when None) together, then wait for each."""
        chosen = [m for m in self.members if kinds is None or m.kind in kinds]
        for member in chosen:
            member.terminate()
        for member in chosen:
            member.stop(timeout_s)


def python_argv(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def jobpipe_argv(*args: str) -> list[str]:
    """``jobpipe args`` with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "jobpipe", *args]


def read_proc_usage(pid: int) -> dict[str, int | None]:
    """RSS (kB, from /proc/<pid>/status) and open file descriptors of a process."""
    rss_kb: int | None = None
    fds: int | None = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
                break
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return {"rss_kb": rss_kb, "fds": fds}
