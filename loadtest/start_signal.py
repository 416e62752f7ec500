"""The start of a run: producers say they are ready, the runner gives one "go" time.

Both sides of the handshake live here: :func:`wait_for_go` in each producer process,
:func:`wait_ready` and :func:`give_go` in the process that runs the load test.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from jobpipe.errors import JobpipeError
from loadtest.processes import Fleet
from loadtest.run_plan import RunPlan

SYNC_DIR = "sync"
GO_FILE = "go"
READY_TIMEOUT_S = 90.0


def wait_for_go(plan: RunPlan, name: str, timeout_s: float = 120.0) -> int:
    """Say this producer is ready, then wait for the runner's start time (``go``).

    Every producer starts on the same clock however long each took to import.
    """
    sync = Path(plan.run_dir) / SYNC_DIR
    sync.mkdir(parents=True, exist_ok=True)
    (sync / f"ready-{name}").touch()
    go = sync / GO_FILE
    deadline = time.monotonic() + timeout_s
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start signal in {timeout_s}s")
        time.sleep(0.01)
    return int(go.read_text().strip())


def wait_ready(fleet: Fleet, run_dir: Path, producers: int, role: str,
               extra: Any = None, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until every producer said it is ready and ``extra()`` (if given) is true.

    Raises:
        JobpipeError: a process exited early, or the timeout passed.
    """
    deadline = time.monotonic() + timeout_s
    sync = run_dir / SYNC_DIR
    while True:
        dead = [m for m in fleet.members if m.proc is not None and m.proc.poll() is not None]
        if dead:
            tail = dead[0].log_path.read_text(errors="replace")[-1500:]
            raise JobpipeError(f"{dead[0].name} exited before the run started; its log "
                               f"ends with:\n{tail}")
        ready = len(list(sync.glob(f"ready-{role}-*"))) if sync.exists() else 0
        if ready >= producers and (extra is None or extra()):
            return
        if time.monotonic() > deadline:
            raise JobpipeError(f"processes not ready after {timeout_s}s (producers ready: "
                               f"{ready}/{producers}); see {run_dir / 'logs'}")
        time.sleep(0.2)


def give_go(run_dir: Path, lead_s: float = 0.3) -> int:
    """Write the common start time (atomically); return it in ns.

    The start is a whole second of the wall clock, as are the ends of every
    process's recording intervals, so per-second buckets hold whole seconds.
    """
    start_ns = math.ceil(time.time() + lead_s) * 1_000_000_000
    tmp = run_dir / SYNC_DIR / f"{GO_FILE}.tmp"
    tmp.write_text(str(start_ns))
    os.replace(tmp, run_dir / SYNC_DIR / GO_FILE)
    return start_ns
