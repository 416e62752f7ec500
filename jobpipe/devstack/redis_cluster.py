"""A local Redis Cluster: N primaries and N replicas of Debian's ``redis-server``.

Node ``i`` listens on ``base_port + i`` and, as Redis Cluster does, on that
port + 10000 for the cluster bus. Each node is a :class:`RedisServer` (AOF on,
``noeviction``) with ``cluster-enabled yes`` and its own directory::

    home/node<port>/{redis.conf,redis.pid,redis.log,data/nodes.conf,data/appendonlydir}

The first ``up`` joins the nodes with ``redis-cli --cluster create``; later
starts find ``nodes.conf`` and rejoin on their own.

For fail-over and resharding under load: :meth:`LocalRedisCluster.fail_over`
kill -9s a primary, waits for its replica to serve its slots and starts it
again (it rejoins as a replica); :meth:`LocalRedisCluster.move_slot` migrates
one slot to another primary while clients keep writing (they meet ASK,
TRYAGAIN and then MOVED).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from jobpipe.devstack.processes import OwnedProcess, poll_until
from jobpipe.devstack.redis_server import RedisConfig, RedisServer
from jobpipe.errors import StackError

CLUSTER_SLOTS = 16384
#: Cluster bus port = client port + this (Redis's fixed rule unless cluster-port is set).
BUS_PORT_OFFSET = 10_000
# Redis's default is 15 s: a killed primary's replica would wait that long to
# take over, which a development cluster (and its tests) need not.
NODE_TIMEOUT_MS = 3_000


@dataclass(frozen=True)
class ClusterNode:
    """What ``CLUSTER NODES`` says of one node (the parts we use)."""

    node_id: str
    port: int
    role: str  # "primary" or "replica"
    primary_id: str | None  # a replica's primary
    connected: bool
    slots: tuple[tuple[int, int], ...] = ()  # ranges served (a primary's), ends included

    def serves(self, slot: int) -> bool:
        """Whether this node's ranges include ``slot``."""
        return any(first <= slot <= last for first, last in self.slots)


def _client(port: int, timeout_s: float = 2.0) -> redis.Redis[bytes]:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout_s,
                       socket_connect_timeout=2.0)


def cluster_info(port: int) -> dict[str, str]:
    """``CLUSTER INFO`` of the node on ``port`` (empty when it does not answer)."""
    client = _client(port)
    try:
        raw = client.execute_command("CLUSTER", "INFO")  # raw: no reply parsing
    except redis.RedisError:
        return {}
    finally:
        client.close()
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def cluster_nodes(port: int) -> list[ClusterNode]:
    """The cluster as the node on ``port`` sees it (empty when it does not answer)."""
    client = _client(port)
    try:
        raw = client.execute_command("CLUSTER", "NODES")  # raw text
    except redis.RedisError:
        return []
    finally:
        client.close()
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        nodes.append(ClusterNode(
            node_id=fields[0], port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
            role="primary" if "master" in flags else "replica",
            primary_id=None if fields[3] == "-" else fields[3],
            connected=fields[7] == "connected" and "fail" not in flags,
            slots=tuple(_slot_range(f) for f in fields[8:] if not f.startswith("["))))
    return nodes


def _slot_range(field: str) -> tuple[int, int]:
    first, _, last = field.partition("-")
    return int(first), int(last or first)


def node_role(port: int) -> str | None:
    """``primary`` or ``replica`` as the node itself says (``ROLE``), None when silent."""
    client = _client(port)
    try:
        reply = client.execute_command("ROLE")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return "primary" if reply[0] in (b"master", "master") else "replica"


def online_replicas(port: int) -> int:
    """How many replicas of the primary on ``port`` finished their sync (``INFO
    replication`` says ``state=online``); 0 when it does not answer."""
    client = _client(port)
    try:
        info = client.info("replication")
    except redis.RedisError:
        return 0
    finally:
        client.close()
    return sum(1 for key, value in info.items()
               if key.startswith("slave") and isinstance(value, dict)
               and value.get("state") == "online")


def serves_every_slot(port: int) -> bool:
    """Whether the node on ``port`` sees the cluster ``ok`` with all 16384 slots served."""
    info = cluster_info(port)
    return (info.get("cluster_state") == "ok"
            and info.get("cluster_slots_assigned") == str(CLUSTER_SLOTS)
            and info.get("cluster_slots_ok") == str(CLUSTER_SLOTS))


def slot_primary(port: int, slot: int) -> ClusterNode | None:
    """The primary serving ``slot`` as the node on ``port`` sees it (None: none, or silent)."""
    return next((n for n in cluster_nodes(port)
                 if n.role == "primary" and n.connected and n.serves(slot)), None)


def move_slot(source: ClusterNode, slot: int, to_port: int, batch: int = 100) -> int:
    """Migrate ``slot`` from ``source`` (its primary) to the primary on ``to_port``
    while clients use it, the way ``redis-cli --cluster reshard`` moves each
    slot: IMPORTING on the target, MIGRATING on the source, ``MIGRATE`` of its
    keys in batches, then ``SETSLOT NODE`` on the target, the source and every
    other primary.

    Returns:
        How many keys moved (0 when the slot was already there).

    Raises:
        StackError: ``to_port`` is no primary, or a step failed.
    """
    target = next((n for n in cluster_nodes(to_port) if n.port == to_port), None)
    if target is None or target.role != "primary":
        raise StackError(f"redis cluster: {to_port} is not a primary")
    if source.node_id == target.node_id:
        return 0
    src, dst = _client(source.port, 30.0), _client(to_port, 30.0)
    moved = 0
    try:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 10_000,
                                "KEYS", *keys)
            moved += len(keys)
        primaries = [n.port for n in cluster_nodes(to_port) if n.role == "primary"
                     and n.connected and n.port not in (source.port, to_port)]
        for port in (to_port, source.port, *primaries):
            client = _client(port)
            try:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
            finally:
                client.close()
    except redis.RedisError as exc:
        raise StackError(f"redis cluster: moving slot {slot} from {source.port} to "
                         f"{to_port} failed after {moved} keys: {exc}") from exc
    finally:
        src.close()
        dst.close()
    return moved


class LocalRedisCluster:
    """``primaries`` primaries, one replica each, on ``base_port`` onwards.

    Args:
        home: the directory holding one ``node<port>/`` per node.
        base_port: the first node's port; the cluster uses ``2 * primaries`` ports
            from it, and the same block + 10000 for the cluster bus.
        primaries: how many primaries (at least 3: Redis Cluster's minimum).
        appendfsync: the nodes' AOF fsync policy.
        start_timeout_s: longest wait for a node to answer, and for all slots.
    """

    def __init__(self, home: Path, base_port: int, primaries: int = 3, *,
                 appendfsync: str = "everysec", start_timeout_s: float = 60.0) -> None:
        if primaries < 3:
            raise StackError(f"redis cluster: {primaries} primaries; Redis Cluster needs "
                             "at least 3")
        self.home = home
        self.base_port = base_port
        self.primaries = primaries
        self.start_timeout_s = start_timeout_s
        self.redis_cli = "redis-cli"
        self.nodes = [self._node(base_port + i, appendfsync) for i in range(2 * primaries)]

    def _node(self, port: int, appendfsync: str) -> RedisServer:
        cluster_lines = ("cluster-enabled yes", "cluster-config-file nodes.conf",
                         f"cluster-node-timeout {NODE_TIMEOUT_MS}")
        return RedisServer(self.home / f"node{port}",
                           RedisConfig(port, appendfsync, extra_config=cluster_lines),
                           name=f"redis-{port}")

    @property
    def ports(self) -> list[int]:
        """Every node's client port."""
        return [node.config.port for node in self.nodes]

    @property
    def url(self) -> str:
        """The first node's URL: a seed from which a cluster client learns the rest."""
        return f"redis://127.0.0.1:{self.base_port}/0"

    @property
    def processes(self) -> list[OwnedProcess]:
        """Each node's process."""
        return [node.process for node in self.nodes]

    def node(self, port: int) -> RedisServer:
        """The node on ``port``."""
        for each in self.nodes:
            if each.config.port == port:
                return each
        raise StackError(f"redis cluster: no node on port {port} (ports {self.ports})")

    def start(self, executable: str, redis_cli: str) -> list[str]:
        """Start every node that is down, form the cluster once, wait for all slots.

        Returns:
            The names of the nodes this call started.

        Raises:
            StackError: a node did not come up, ``redis-cli --cluster create``
                failed, or the slots were not all served in time.
        """
        self.redis_cli = redis_cli
        started = []
        for node in self.nodes:
            node.executable = executable
            if node.start(self.start_timeout_s):
                started.append(node.process.name)
        if self._unformed():
            self._create()
        self.wait_all_slots()
        self.wait_replicas_known()
        return started

    def _unformed(self) -> bool:
        """True while no node knows another: a fresh cluster that ``create`` must join."""
        return all(cluster_info(port).get("cluster_known_nodes") == "1" for port in self.ports)

    def _create(self) -> None:
        command = [self.redis_cli, "--cluster", "create",
                   *(f"127.0.0.1:{port}" for port in self.ports),
                   "--cluster-replicas", "1", "--cluster-yes"]
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=self.start_timeout_s, check=False)
        if result.returncode != 0:
            lines = (result.stdout + result.stderr).strip().splitlines()
            raise StackError(f"redis-cli --cluster create failed: "
                             f"{lines[-1] if lines else result.returncode}")

    def wait_all_slots(self, timeout_s: float | None = None) -> None:
        """Wait until every running node sees ``cluster_state:ok`` and all slots served.

        Raises:
            StackError: that did not happen in time.
        """
        def ready() -> bool:
            running = [node.config.port for node in self.nodes if node.process.alive]
            return bool(running) and all(serves_every_slot(port) for port in running)

        if not poll_until(ready, timeout_s or self.start_timeout_s, 0.1):
            raise StackError(f"redis cluster on {self.base_port}..{self.ports[-1]} did not "
                             f"serve all {CLUSTER_SLOTS} slots in time; see {self.home}")

    def wait_replicas_known(self, timeout_s: float | None = None) -> None:
        """Wait until every node sees each primary with a connected replica, and
        each primary's replica has finished its first sync.

        Slots are served before the replicas' roles have spread by gossip; a
        fail-over needs the replica known, so ``start`` waits for this too. Until
        its sync is done a replica acknowledges nothing (``WAIT`` answers 0).

        Raises:
            StackError: that did not happen in time.
        """
        def known(port: int) -> bool:
            view = cluster_nodes(port)
            primaries = {n.node_id for n in view if n.role == "primary" and n.connected}
            covered = {n.primary_id for n in view if n.role == "replica" and n.connected}
            return len(primaries) == self.primaries and primaries <= covered

        def synced() -> bool:
            roles = self.roles()
            return all(online_replicas(port) >= 1
                       for port, role in roles.items() if role == "primary")

        if not poll_until(lambda: all(known(port) for port in self.ports) and synced(),
                          timeout_s or self.start_timeout_s, 0.1):
            raise StackError(f"redis cluster on {self.base_port}..{self.ports[-1]}: not every "
                             f"node sees {self.primaries} primaries with a synced replica in time")

    def roles(self) -> dict[int, str | None]:
        """Each node's role by port (None where it does not answer)."""
        return {port: node_role(port) for port in self.ports}

    def kill(self, port: int) -> bool:
        """SIGKILL the node on ``port`` (its replica takes over after the node timeout)."""
        return self.node(port).kill()

    def primary_for(self, slot: int) -> ClusterNode:
        """The primary serving ``slot``, as the first answering node sees it.

        Raises:
            StackError: no answering node names one.
        """
        for node in self.nodes:
            primary = slot_primary(node.config.port, slot) if node.process.alive else None
            if primary is not None:
                return primary
        raise StackError(f"redis cluster on {self.base_port}: no primary serves slot {slot}")

    def fail_over(self, port: int, timeout_s: float | None = None) -> int:
        """SIGKILL the primary on ``port``, wait until its replica serves its slots,
        then start it again and wait until it is that replica's replica.

        Returns:
            The port of the promoted replica.

        Raises:
            StackError: no replica took over, or the cluster did not heal, in time.
        """
        timeout_s = timeout_s or self.start_timeout_s
        view = cluster_nodes(port)
        me = next(n for n in view if n.port == port)
        replicas = [n.port for n in view if n.primary_id == me.node_id]
        self.kill(port)
        if not poll_until(lambda: any(node_role(r) == "primary" for r in replicas),
                          timeout_s, 0.05):
            raise StackError(f"redis cluster: no replica of {port} ({replicas}) took over")
        promoted = next(r for r in replicas if node_role(r) == "primary")
        self.wait_all_slots(timeout_s)
        self.node(port).start(timeout_s)
        self.wait_all_slots(timeout_s)
        self.wait_replicas_known(timeout_s)
        return promoted

    def move_slot(self, slot: int, to_port: int) -> int:
        """Migrate ``slot`` to the primary on ``to_port`` (:func:`move_slot`)."""
        return move_slot(self.primary_for(slot), slot, to_port)
