"""The Kafka nodes of one dev stack: format once, start, wait for metadata, stop.

For a broker's fail-over under load (three nodes): :meth:`KafkaCluster.fail_over`
kill -9s a node, waits until the survivors lead every partition it led, starts
it again and waits until every partition has its whole replica set in sync.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobpipe.devstack.kafka_broker import KafkaLayout, KafkaNode, new_cluster_id
from jobpipe.devstack.kafka_jars import ensure_kafka_jars
from jobpipe.devstack.processes import poll_until
from jobpipe.errors import StackError


def java_failure(output: str) -> str:
    """The line of a JVM's output that names its failure: the innermost
    exception (``Caused by: ...``) or else the first exception line, rather
    than a stack trace's last line (``... 8 more``)."""
    lines = [line.strip() for line in output.splitlines()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    if causes:
        return causes[-1]
    named = [line for line in lines if ("Exception" in line or "Error" in line)
             and not line.startswith(("at ", "..."))]
    return named[0] if named else (lines[-1] if lines else "")


# Longest wait for the survivors to lead a killed node's partitions before it is
# started again anyway: the broker session (3 s in the dev stack, 9 s in Kafka's
# defaults; kafka_broker.BROKER_SESSION_PROPERTIES), and slack for a loaded machine.
# (A partition whose only in-sync replica was the killed node waits for it.)
MOVE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BrokerFailOver:
    """Seconds from a broker's kill -9 to each step of its fail-over.

    Attributes:
        led: partitions it led when killed (every topic, internal ones included).
        leaders_moved_s: the survivors led all of them (None: not in time).
        restarted_s: it served metadata again after its restart.
        in_sync_s: every partition had its whole replica set in sync (None: not in time).
    """

    led: int
    leaders_moved_s: float | None
    restarted_s: float
    in_sync_s: float | None


class KafkaCluster:
    """One or three combined KRaft nodes under ``home`` (one directory per layout).

    Args:
        home: ``root/kafka/cluster-<N>``; holds ``cluster.id`` and ``node<i>/``.
        layout: ports, node count and configuration.
        libs_dir: the jars; fetched into the shared cache when ``None``.
        tool_path: ``PATH`` for ``mvn`` when the jars must be fetched.
        start_timeout_s: longest wait for the nodes to serve metadata.
    """

    def __init__(self, home: Path, layout: KafkaLayout, libs_dir: Path | None = None,
                 tool_path: str | None = None, start_timeout_s: float = 120.0) -> None:
        self.home = home
        self.layout = layout
        self.libs_dir = libs_dir
        self.tool_path = tool_path
        self.start_timeout_s = start_timeout_s
        self.java = "java"
        self.nodes = {n: KafkaNode(home / f"node{n}", layout, n, libs_dir or Path("."))
                      for n in layout.nodes}

    def ensure_jars(self) -> Path:
        """The jar directory, fetched with Maven the first time (see kafka_jars)."""
        if self.libs_dir is None or not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            self.libs_dir = ensure_kafka_jars(self.libs_dir, tool_path=self.tool_path)
        for node in self.nodes.values():
            node.libs_dir, node.java = self.libs_dir, self.java
        return self.libs_dir

    def start(self, node: int | None = None) -> float | None:
        """Start one node, or every node that is down, and wait until it serves metadata.

        Returns:
            Seconds from spawning the JVMs to ready, or None when all ran already.

        Raises:
            StackError: formatting failed, a port is taken, a JVM exited (with
                the end of its log) or time ran out.
        """
        self.ensure_jars()
        wanted = [self.nodes[node]] if node is not None else list(self.nodes.values())
        to_start = [n for n in wanted if not n.process.alive]
        deadline = time.monotonic() + self.start_timeout_s
        if not to_start:
            for each in wanted:
                each.wait_port(deadline)
            return None
        cluster_id = self._cluster_id()
        formats = [(n, n.prepare(cluster_id)) for n in to_start]  # format in parallel
        for each, fmt in formats:
            if fmt is not None:
                output, _ = fmt.communicate(timeout=self.start_timeout_s)
                if fmt.returncode != 0:
                    text = output.decode(errors="replace")
                    (each.logs_dir / "format.out").write_text(text)
                    raise StackError(f"kafka-{each.node}: formatting storage failed: "
                                     f"{java_failure(text) or fmt.returncode} (whole output "
                                     f"in {each.logs_dir / 'format.out'})")
        began = time.monotonic()
        for each in to_start:
            each.spawn()
        for each in to_start:
            each.wait_port(deadline)
        self._wait_metadata([n.node for n in to_start], deadline)
        start_s = round(time.monotonic() - began, 2)
        for each in to_start:
            (each.home / "started.json").write_text(json.dumps({"start_s": start_s}))
        return start_s

    def recorded_start_s(self, node: int) -> float | None:
        """How long ``node`` took to become ready at its last start."""
        try:
            data = json.loads((self.nodes[node].home / "started.json").read_text())
            return float(data["start_s"])
        except (OSError, ValueError, KeyError):
            return None

    def _cluster_id(self) -> str:
        path = self.home / "cluster.id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id())
        return path.read_text().strip()

    def _wait_metadata(self, node_ids: list[int], deadline: float) -> None:
        from confluent_kafka import KafkaException

        admin = self._admin()
        while True:
            try:
                if set(node_ids) <= set(admin.list_topics(timeout=5).brokers):
                    return
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"kafka at {self.layout.bootstrap} did not list brokers "
                                 f"{node_ids} in time; see {self.home}")
            time.sleep(0.2)

    def stop(self, node: int, timeout_s: float = 30.0) -> bool:
        """SIGTERM a node (clean shutdown), SIGKILL after ``timeout_s``."""
        stopped = self.nodes[node].process.stop(timeout_s)
        self.nodes[node].adopt_archive()
        return stopped

    def adopt_class_archives(self) -> None:
        """Share a class archive the nodes wrote as they exited (see class_archive);
        call it once every node is gone."""
        for each in self.nodes.values():
            each.adopt_archive()

    def kill(self, node: int) -> bool:
        """SIGKILL a node: it recovers its log on the next start."""
        return self.nodes[node].process.kill()

    def freeze(self, node: int) -> bool:
        """SIGSTOP a node: its sockets stay open but it answers nothing."""
        return self.nodes[node].process.freeze()

    def thaw(self, node: int) -> bool:
        """SIGCONT a frozen node."""
        return self.nodes[node].process.send(signal.SIGCONT)

    # --- fail-over --------------------------------------------------------------------

    def _admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        # log_level 2: a node that is down (starting, or killed) refuses; that is no news.
        return AdminClient({"bootstrap.servers": self.layout.bootstrap,
                            "broker.address.family": "v4", "log_level": 2})

    @staticmethod
    def _partitions(admin: Any, topic: str | None = None) -> list[Any]:
        """Each partition's metadata (``leader``, ``replicas``, ``isrs``) of ``topic``,
        or of every topic, internal ones included, as an answering node sees it;
        empty when none answers."""
        from confluent_kafka import KafkaException

        try:
            topics = admin.list_topics(topic, timeout=5).topics
        except KafkaException:
            return []
        return [p for t in topics.values() if t.error is None for p in t.partitions.values()]

    def leader_of(self, topic: str, partition: int = 0) -> int | None:
        """The node leading ``topic``'s ``partition`` (None: unknown or leaderless)."""
        leaders = [p.leader for p in self._partitions(self._admin(), topic) if p.id == partition]
        return leaders[0] if leaders and leaders[0] >= 0 else None

    def fail_over(self, node: int, timeout_s: float | None = None) -> BrokerFailOver:
        """SIGKILL ``node``, wait until the others lead every partition it led,
        start it again, and wait until every partition's replicas are all in sync.

        The controller moves leaders once the dead node's session lapses
        (``broker.session.timeout.ms``: 3 s in the dev stack, 9 s in Kafka's
        defaults), so the first wait takes about that long.

        Raises:
            StackError: the node did not start again in time.
        """
        timeout_s = timeout_s or self.start_timeout_s
        # One client for every poll, not a librdkafka instance made and destroyed
        # every 0.2 s while a node is down.
        admin = self._admin()

        def led_by_others() -> bool:
            parts = self._partitions(admin)
            return bool(parts) and all(p.leader not in (node, -1) for p in parts)

        def all_in_sync() -> bool:
            parts = self._partitions(admin)
            return bool(parts) and all(len(p.isrs) == len(p.replicas) for p in parts)

        led = sum(1 for p in self._partitions(admin) if p.leader == node)
        self.kill(node)
        killed = time.monotonic()

        def since_kill() -> float:
            return round(time.monotonic() - killed, 2)

        moved = poll_until(led_by_others, min(timeout_s, MOVE_TIMEOUT_S), 0.2)
        leaders_moved_s = since_kill() if moved else None
        self.start(node)
        restarted_s = since_kill()
        in_sync = poll_until(all_in_sync, timeout_s, 0.2)
        return BrokerFailOver(led, leaders_moved_s, restarted_s,
                              since_kill() if in_sync else None)
