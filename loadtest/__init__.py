"""Load testing: open-loop load, per-stage latency, saturation, capacity, reports, peers.

Entry points are the ``jobpipe loadtest`` and ``jobpipe capacity`` commands;
:func:`run_loadtest` runs one from Python. The worker app the runs use is
``loadtest.tasks:app``. See ``docs/benchmarks/loadtest.md``.
"""

from __future__ import annotations

from loadtest.capacity import Measured, Plan, plan_capacity
from loadtest.run_plan import RunPlan
from loadtest.saturation import Saturation, StepResult, find_saturation
from loadtest.schedule import Schedule, Step


def run_loadtest(*args: object, **kwargs: object) -> object:
    """Run a load test (see :func:`loadtest.orchestrate.run_loadtest`); imported lazily."""
    from loadtest.orchestrate import run_loadtest as run

    return run(*args, **kwargs)  # type: ignore[arg-type]


__all__ = [
    # capacity
    "Measured",
    "Plan",
    # running
    "RunPlan",
    # saturation
    "Saturation",
    # schedule
    "Schedule",
    "Step",
    "StepResult",
    "find_saturation",
    "plan_capacity",
    "run_loadtest",
]
