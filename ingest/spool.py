"""The local spool: push calls Redis could not take by the deadline.

An append-only file of orjson lines, one per script call, written (and
fsynced) before the caller is told its jobs were accepted; re-sent in file
order when Redis answers again, then removed. A line cut short by a crash is
ignored (its caller was never told "accepted"). One spool file per producer
process: two processes must not share a path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.plan import RECORDS_MAY_EXIST, Arg, PushPlan

log = logging.getLogger(__name__)
# Lines carry "v": 2. A line without it was spooled before the push script took
# its records flag (ARGV[5]) and kept state records in hashes: see _from_format_1.
FORMAT = 2


@dataclass(frozen=True, slots=True)
class SpooledCall:
    """One spooled script call."""

    queue: str
    keys: list[str]
    args: list[Arg]
    jobs: int


class Spool:
    """Append-only spool file.

    Args:
        path: the file; its directory is created when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pending = self.path.exists() and self.path.stat().st_size > 0

    @property
    def pending(self) -> bool:
        """Whether calls are waiting to be re-sent."""
        return self._pending

    def append(self, plan: PushPlan) -> None:
        """Write a plan's calls not made yet (one, or the parts left of a queue
        with ``shard_slots``) durably (fsync) at the end of the spool. A spooled
        call may have run already (its reply was lost), so its re-sending writes
        a state record only where none exists."""
        plan.may_have_run()
        line = b"".join(
            orjson.dumps({"v": FORMAT, "queue": call.queue, "keys": call.keys,
                          "args": [a.decode() if isinstance(a, bytes) else a for a in call.args],
                          "jobs": len(call.ids)}) + b"\n"
            for call in plan.calls())
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._pending = True

    def read(self) -> list[SpooledCall]:
        """Every complete spooled call, oldest first."""
        if not self.path.exists():
            return []
        calls = []
        for number, line in enumerate(self.path.read_bytes().split(b"\n"), 1):
            if not line:
                continue
            try:
                obj = orjson.loads(line)
                args = obj["args"] if obj.get("v") == FORMAT else _from_format_1(obj["args"])
                calls.append(SpooledCall(obj["queue"], obj["keys"], args, obj["jobs"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("spool %s: skipping unreadable line %d", self.path, number)
        return calls

    def keep(self, calls: list[SpooledCall]) -> None:
        """Replace the spool by ``calls`` (the ones not re-sent yet), atomically."""
        if not calls:
            self.path.unlink(missing_ok=True)
            self._pending = False
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        body = b"".join(orjson.dumps({"v": FORMAT, "queue": c.queue, "keys": c.keys,
                                      "args": c.args, "jobs": c.jobs}) + b"\n" for c in calls)
        tmp.write_bytes(body)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(self.path)


def _from_format_1(args: list[Arg]) -> list[Arg]:
    """A call spooled by an earlier jobpipe, as the push script reads calls now: the
    records flag is added (set: the call may have run), and the operations that
    started state records in string keys (``S <key prefix ending :job:> ...``,
    last before the wake-up ``W``) are dropped. Its jobs go; their records then
    start at the bridge's ``in_kafka``."""
    head, ops = args[:RECORDS_MAY_EXIST], args[RECORDS_MAY_EXIST:]
    for j, op in enumerate(ops[:-1]):
        if op == "S" and str(ops[j + 1]).endswith(":job:"):
            wake = ops[-2:] if len(ops) >= 2 and ops[-2] == "W" else []
            ops = ops[:j] + wake
            break
    return [*head, 1, *ops]
