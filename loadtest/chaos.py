"""Chaos: kill -9 a component on a schedule and restart it, while the load runs.

``bridge`` and ``worker`` kill one of the run's processes (round robin) with
SIGKILL to its whole process group and start it again at once; ``kafka`` and
``redis`` SIGKILL the private stack's broker or Redis and start it again.
On the private Redis Cluster of ``redis-primary`` and ``redis-reshard``, the
target is the primary serving the run's first queue (every key of a queue
shares its slot): ``redis-primary`` SIGKILLs it, waits for its replica to
take over and starts it again as a replica; ``redis-reshard`` migrates the
queue's slot to the next primary. On the private 3-broker Kafka of
``kafka-broker``, the target is the broker leading partition 0 of the run's
first queue: SIGKILLed, the others take over its partitions, and it is
started again once they have (:meth:`KafkaCluster.fail_over`). Producers,
bridges and workers are not restarted: they must find the new leaders
themselves.

The schedule is a list of steps taken in turn; the targets of one step
(``kafka-broker+redis-primary``) are killed at the same moment, each in its
own thread, so both engines fail at once.
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
from jobpipe.errors import StackError
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
    """A thread that takes the steps of ``steps`` in turn at :func:`kill_offsets_s`.

    Args:
        steps: each a tuple of targets killed together: ``bridge``, ``worker``,
            ``kafka``, ``redis``, ``kafka-broker``, ``redis-primary``,
            ``redis-reshard``.
        fleet: the run's processes (for bridge and worker).
        devstack: the run's private stack (for kafka and the Redis targets).
        start_s: wall-clock start of the run.
        offsets_s: when to kill.
        queue: the queue whose slot and partition the cluster targets aim at.
        namespace: the run's namespace (its topics' prefix).
    """

    def __init__(self, steps: tuple[tuple[str, ...], ...], fleet: Fleet, devstack: Any,
                 start_s: float, offsets_s: list[float], queue: str = "loadtest",
                 namespace: str = "loadtest") -> None:
        self.steps = steps
        self.slot = key_slot(names.ready_key("ns", queue, 0).encode())
        self.topic = names.main_topic(namespace, queue)
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
            step = self.steps[n % len(self.steps)]
            t_s = round(time.time() - self.start_s, 2)
            together = [threading.Thread(target=self._kill_logged, args=(target, n, t_s),
                                         name=f"chaos-{target}") for target in step]
            for thread in together:
                thread.start()
            for thread in together:
                thread.join()

    def _kill_logged(self, target: str, n: int, t_s: float) -> None:
        try:
            self.kills.append({"t_s": t_s, **self._kill_and_restart(target, n)})
        except Exception:
            log.exception("chaos: kill %d (%s) failed", n, target)
            return
        log.info("chaos: killed %s at %ss", target, t_s)

    def _since_start(self) -> float:
        return round(time.time() - self.start_s, 2)

    def _kill_and_restart(self, target: str, n: int) -> dict[str, Any]:
        """Kill ``target`` (the ``n``-th kill of the run) and bring it back; what happened."""
        if target in ("bridge", "worker"):
            members = self.fleet.of_kind(target)
            member = members[(n // len(self.steps)) % len(members)]
            pid = member.kill()
            time.sleep(RESTART_DELAY_S)
            restarted_t_s = self._since_start()
            member.start()
            return {"target": member.name, "pid": pid, "restarted_pid": member.pid,
                    "restarted_t_s": restarted_t_s}
        if target == "kafka":
            pid = self.devstack.kafka_pid
            self.devstack.kill_kafka()
            time.sleep(RESTART_DELAY_S)
            self.devstack.start_kafka()
            return {"target": "kafka", "pid": pid, "restarted_pid": self.devstack.kafka_pid}
        if target == "redis":
            pid = self.devstack.redis_pid
            self.devstack.kill_redis()
            time.sleep(RESTART_DELAY_S)
            self.devstack.start_redis()
            return {"target": "redis", "pid": pid, "restarted_pid": self.devstack.redis_pid}
        if target == "kafka-broker":
            return self._broker_fail_over()
        if target == "redis-primary":
            cluster = self.devstack.redis_cluster
            port = cluster.primary_for(self.slot).port
            pid = cluster.node(port).process.pid
            promoted = cluster.fail_over(port)
            return {"target": f"redis-{port}", "pid": pid, "promoted": f"redis-{promoted}",
                    "restarted_pid": cluster.node(port).process.pid,
                    "healed_t_s": self._since_start()}
        if target == "redis-reshard":
            cluster = self.devstack.redis_cluster
            source = cluster.primary_for(self.slot).port
            primaries = sorted(p for p, role in cluster.roles().items() if role == "primary")
            to_port = primaries[(primaries.index(source) + 1) % len(primaries)]
            keys = cluster.move_slot(self.slot, to_port)
            return {"target": f"slot {self.slot}", "from": f"redis-{source}",
                    "to": f"redis-{to_port}", "keys": keys, "done_t_s": self._since_start()}
        raise ValueError(f"unknown chaos target {target!r}")

    def _broker_fail_over(self) -> dict[str, Any]:
        kafka = self.devstack.kafka
        node = kafka.leader_of(self.topic)
        if node is None:
            raise StackError(f"kafka: no broker leads {self.topic} partition 0")
        pid = kafka.nodes[node].process.pid
        killed_at = time.time()
        done = kafka.fail_over(node)

        def at(seconds: float | None) -> float | None:
            return None if seconds is None else round(killed_at + seconds - self.start_s, 2)

        return {"target": f"kafka-{node}", "pid": pid, "partitions_led": done.led,
                "leaders_moved_t_s": at(done.leaders_moved_s),
                "restarted_pid": kafka.nodes[node].process.pid,
                "restarted_t_s": at(done.restarted_s), "healed_t_s": at(done.in_sync_s)}
