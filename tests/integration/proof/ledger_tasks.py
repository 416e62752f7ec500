"""Handlers for the chaos tests: every execution is written to the ledger at once.

``PROOF_LEDGER_DIR`` is the ledger directory. While the file named by
``PROOF_OUTAGE_FILE`` exists, ``record`` fails (a downstream outage); each
failed attempt is recorded under the role ``attempts`` as ``<id> <attempt> <ns>``
so the test can check attempt counts and backoff.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from consumers import App, JobContext
from loadtest.ledger import EXECUTED, LedgerWriter

app = App("proof")
_LEDGER_DIR = os.environ.get("PROOF_LEDGER_DIR", "ledger")
_OUTAGE = Path(os.environ.get("PROOF_OUTAGE_FILE", "outage"))
# flush_interval_s=0: written before the handler returns, so a kill -9 of the
# worker cannot make an executed job look lost.
_executed = LedgerWriter(_LEDGER_DIR, EXECUTED, flush_interval_s=0)
_attempts = LedgerWriter(_LEDGER_DIR, "attempts", flush_interval_s=0)


class DownstreamDown(Exception):
    """The simulated downstream service is unavailable."""


@app.task
def record(ctx: JobContext, args: Any) -> None:
    """Record the execution; fail while the outage file exists."""
    _attempts.record_one(f"{ctx.job_id} {ctx.attempt} {time.time_ns()}")
    if _OUTAGE.exists():
        raise DownstreamDown("downstream is down")
    _executed.record_one(ctx.job_id)
