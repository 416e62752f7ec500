"""Log the slow cyclic-GC collections of every Python process started with this on its path.

``PYTHONPATH=scripts/gc_probe jobpipe bench latency ...``: Python imports
``sitecustomize`` at start-up, in the command and in every stage it spawns
(they inherit ``PYTHONPATH``). Each collection of generation 2, or any over
5 ms, appends one line to ``gc-<pid>.log`` in ``$GC_PROBE_DIR`` (default: the
current directory): wall time, generation, milliseconds, objects collected,
the command.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

_OUT = os.environ.get("GC_PROBE_DIR", ".")
_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    if info["generation"] == 2 or took > 0.005:
        with open(os.path.join(_OUT, f"gc-{os.getpid()}.log"), "a") as log:
            log.write(f"{time.time():.3f} gen={info['generation']} ms={took * 1000:.1f} "
                      f"collected={info['collected']} argv={' '.join(sys.argv[:3])}\n")


gc.callbacks.append(_on_gc)
