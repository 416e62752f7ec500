"""Chaos: kill -9 a component on a schedule and restart it, while the load runs.

``bridge`` and ``worker`` kill one of the run's processes (round robin) with
SIGKILL to its whole process group and start it again at once; ``kafka`` and
``redis`` SIGKILL the private stack's broker or Redis and start it again.
On the private Redis Cluster of ``redis-primary`` and ``redis-reshard``, the
target is the primary serving the run's first queue (every key of a queue
shares its slot): ``redis-primary`` SIGKILLs it, waits for its replica to
take over and starts it again as a replica; ``redis-reshard`` migrates the
queue's slot to the next primary. Producers, bridges and workers are not
restarted: they must find the slot's new home themselves.
Every kill is written to the report; the ledger then counts, by job id,
whether anything accepted was lost.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis.crc import key_slot

from jobpipe import names
from loadtest.processes import Fleet

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0


def kill_offsets_s(duration_s: float, every_s: float) -> list[float]:
    """When to kill, in seconds since the start: every ``every_s``, not at 0, not at the end."""
    out, t = [], every_s
    while t < duration_s:
        out.append(round(t, 3))
        t += every_s
    return out


class ChaosMonkey:
    """A thread that kills and restarts ``target`` at :func:`kill_offsets_s`.

    Args:
        targets: ``bridge``, ``worker``, ``kafka``, ``redis``, ``redis-primary``,
            ``redis-reshard``, taken in turn.
        fleet: the run's processes (for bridge and worker).
        devstack: the run's private stack (for kafka and the Redis targets).
        start_s: wall-clock start of the run.
        offsets_s: when to kill.
        queue: the queue whose slot the Redis Cluster targets aim at.
    """

    def __init__(self, targets: tuple[str, ...], fleet: Fleet, devstack: Any, start_s: float,
                 offsets_s: list[float], queue: str = "loadtest") -> None:
        self.targets = targets
        self.slot = key_slot(names.ready_key("ns", queue, 0).encode())
        self.fleet = fleet
        self.devstack = devstack
        self.start_s = start_s
        self.offsets_s = offsets_s
        self.kills: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="chaos")
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        """Stop (a restart in progress completes); the kills done."""
        self._stop.set()
        self._thread.join(timeout=120)
        return self.kills

    def _loop(self) -> None:
        for n, offset in enumerate(self.offsets_s):
            if self._stop.wait(max(0.0, self.start_s + offset - time.time())):
                return
            try:
                self._kill_and_restart(n)
            except Exception:
                log.exception("chaos: kill %d failed", n)

    def _kill_and_restart(self, n: int) -> None:
        t_s = round(time.time() - self.start_s, 2)
        target = self.targets[n % len(self.targets)]
        if target in ("bridge", "worker"):
            members = self.fleet.of_kind(target)
            member = members[(n // len(self.targets)) % len(members)]
            pid = member.kill()
            time.sleep(RESTART_DELAY_S)
            restarted_t_s = round(time.time() - self.start_s, 2)
            member.start()
            self.kills.append({"t_s": t_s, "target": member.name, "pid": pid,
                               "restarted_pid": member.pid, "restarted_t_s": restarted_t_s})
        elif target == "kafka":
            pid = self.devstack.kafka_pid
            self.devstack.kill_kafka()
            time.sleep(RESTART_DELAY_S)
            self.devstack.start_kafka()
            self.kills.append({"t_s": t_s, "target": "kafka", "pid": pid,
                               "restarted_pid": self.devstack.kafka_pid})
        elif target == "redis":
            pid = self.devstack.redis_pid
            self.devstack.kill_redis()
            time.sleep(RESTART_DELAY_S)
            self.devstack.start_redis()
            self.kills.append({"t_s": t_s, "target": "redis", "pid": pid,
                               "restarted_pid": self.devstack.redis_pid})
        elif target == "redis-primary":
            cluster = self.devstack.redis_cluster
            port = cluster.primary_for(self.slot).port
            pid = cluster.node(port).process.pid
            promoted = cluster.fail_over(port)
            self.kills.append({"t_s": t_s, "target": f"redis-{port}", "pid": pid,
                               "promoted": f"redis-{promoted}",
                               "restarted_pid": cluster.node(port).process.pid,
                               "healed_t_s": round(time.time() - self.start_s, 2)})
        elif target == "redis-reshard":
            cluster = self.devstack.redis_cluster
            source = cluster.primary_for(self.slot).port
            primaries = sorted(p for p, role in cluster.roles().items() if role == "primary")
            to_port = primaries[(primaries.index(source) + 1) % len(primaries)]
            keys = cluster.move_slot(self.slot, to_port)
            self.kills.append({"t_s": t_s, "target": f"slot {self.slot}",
                               "from": f"redis-{source}", "to": f"redis-{to_port}",
                               "keys": keys, "done_t_s": round(time.time() - self.start_s, 2)})
        log.info("chaos: killed %s at %ss", self.kills[-1]["target"], t_s)
