"""CPython's cyclic garbage collector, tuned for a long-running stage process.

A full (generation 2) collection walks every tracked object. In a bridge
serving 200 jobs/s that took 14-23 ms, once every ~40 s (a ``gc.callbacks``
probe, docs/benchmarks.md), and every job waiting meanwhile waited that long.
Most of those objects are made before a stage serves (modules, settings, the
app's handlers) and live as long as the process, so the supervisor
(:mod:`jobpipe.supervisor`) freezes them just before it runs the stage: later
full collections walk only what came after.
"""

from __future__ import annotations

import gc

# Each job allocates ~10 container objects (args, Job, Item, JobContext,
# coroutines...), so with CPython's default gen-0 threshold (700) the cyclic
# collector ran every ~70 jobs and took ~15% of a no-op job's CPU. A process that
# runs a worker collects young objects every this many allocations instead.
GC_YOUNG_THRESHOLD = 20_000


def collect_young_less_often() -> None:
    """Raise the gen-0 collection threshold to GC_YOUNG_THRESHOLD (never lower it)."""
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def freeze_startup_objects() -> None:
    """Collect once, then keep every object alive now out of later collections.

    For a process's main service only: what is frozen is never collected as a
    cycle again, so a test that starts many stages in one process must not.
    """
    gc.collect()
    gc.freeze()
