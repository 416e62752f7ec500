"""Where a load test runs: the configured services, the dev stack, or a private one.

* Redis/Kafka configured (``JOBPIPE_REDIS_URL`` / ``JOBPIPE_KAFKA_BOOTSTRAP``
  or a ``jobpipe.toml``): use them.
* Nothing configured: ``DevStack(".jobpipe").up()``, as ``jobpipe dev up`` does.
* ``--kill kafka|redis``: a private stack under the run folder on free ports,
  since a load test must never kill services it does not own. Its Redis fsyncs
  every write (``appendfsync always``): with ``everysec`` a kill -9 loses up to
  a second of acknowledged jobs by design, and the ledger would rightly say so.
* ``--kill redis-primary|redis-reshard``: a private stack whose Redis is a
  cluster of 3 primaries and 3 replicas (``appendfsync everysec``: what keeps
  jobs across a fail-over is the replica, and ``redis.wait_replicas``).
* ``--kill kafka-broker``: a private stack with 3 Kafka brokers, the run's
  topics replicated 3 times with min ISR 2 (what keeps records across a broker
  kill). Both at once (``kafka-broker+redis-primary``): both.
* ``--stack-ports REDIS:KAFKA`` puts a private stack on those first ports.

Every run gets a namespace of its own, so its keys, topics and consumer
groups share nothing with other runs; :func:`cleanup` removes them afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jobpipe.settings import Settings, find_config, load_settings
from jobpipe.topology import QueueSpec, Topology
from loadtest.config_file import settings_to_toml
from loadtest.run_plan import BROKERS_TARGETS, CLUSTER_TARGETS, RunPlan

log = logging.getLogger(__name__)

CONFIG_NAME = "jobpipe.toml"
RETRY_TIERS_S = (1.0, 5.0)
#: Kafka brokers of the private stack of ``--kill kafka-broker``.
BROKERS = 3


@dataclass
class RunStack:
    """The services of one run.

    Attributes:
        settings: the run's settings (its namespace and queues included).
        config_path: the generated ``jobpipe.toml`` its processes read.
        devstack: the dev stack this run uses, when it uses one (``None`` for
            configured services).
        started: names of the stack processes this run started (stopped at the end).
    """

    settings: Settings
    config_path: Path
    devstack: Any | None = None
    started: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        """Environment for the run's processes."""
        return {"JOBPIPE_CONFIG": str(self.config_path),
                "JOBPIPE_REDIS_URL": self.settings.redis.url,
                "JOBPIPE_KAFKA_BOOTSTRAP": self.settings.kafka.bootstrap,
                "JOBPIPE_NAMESPACE": self.settings.namespace}


def is_configured(config_path: Path | None, environ: Mapping[str, str]) -> bool:
    """Whether the user pointed jobpipe at services (env or a settings file)."""
    return bool(environ.get("JOBPIPE_REDIS_URL") or environ.get("JOBPIPE_KAFKA_BOOTSTRAP")
                or find_config(config_path, environ) is not None)


def run_topology(plan: RunPlan) -> Topology:
    """The run's queues: partitions as asked, fair when jobs carry tenants."""
    return Topology({q: QueueSpec(q, partitions=plan.partitions, fair=plan.tenants > 0,
                                  retry_tiers_s=RETRY_TIERS_S, max_backlog=None,
                                  track_status=plan.track_status)
                     for q in plan.queues})


def private_devstack(plan: RunPlan) -> Any:
    """The private stack a run that kills services needs: a Redis Cluster for the
    cluster targets, 3 brokers for ``kafka-broker``; on ``--stack-ports`` or free ports."""
    from jobpipe.devstack import DevStack
    from jobpipe.devstack.ports import free_port_block
    from jobpipe.devstack.redis_cluster import BUS_PORT_OFFSET

    targets = set(plan.kill_targets)
    on_cluster = bool(set(CLUSTER_TARGETS) & targets)
    brokers = BROKERS if set(BROKERS_TARGETS) & targets else 1
    redis_port = plan.stack_redis_port or (
        free_port_block(6, shadow_offset=BUS_PORT_OFFSET) if on_cluster else free_port_block(1))
    kafka_port = plan.stack_kafka_port or free_port_block(2 * brokers)
    return DevStack(Path(plan.run_dir) / "stack", redis_port=redis_port, kafka_port=kafka_port,
                    brokers=brokers, redis_cluster=3 if on_cluster else 0,
                    redis_appendfsync="everysec" if on_cluster else "always")


def open_stack(plan: RunPlan, config_path: Path | None = None,
               environ: Mapping[str, str] | None = None) -> RunStack:
    """Find or start the services, build the run's settings, create its topics.

    Raises:
        StackError: the dev stack could not start.
        KafkaUnavailable: topics could not be created.
    """
    from jobpipe.admin import apply_topics

    env = dict(os.environ if environ is None else environ)
    devstack: Any | None = None
    started: tuple[str, ...] = ()
    if plan.private_stack:
        devstack = private_devstack(plan)
        info = devstack.up()
        started = ("redis", "kafka")
        env.update(info.env())
        config_path = None
        env.pop("JOBPIPE_CONFIG", None)
    elif not is_configured(config_path, env):
        from jobpipe.devstack import DevStack

        devstack = DevStack(Path(".jobpipe"))
        info = devstack.up()
        started = info.started
        env.update(info.env())
    base = load_settings(config_path, environ=env)
    settings = replace(base, namespace=plan.namespace, topology=run_topology(plan))
    if devstack is not None and devstack.layout.brokers == BROKERS:
        # Each record on every broker, written once two hold it: one broker may die.
        settings = replace(settings, kafka=replace(settings.kafka, replication_factor=BROKERS,
                                                   min_insync_replicas=BROKERS - 1))
    path = Path(plan.run_dir) / CONFIG_NAME
    path.write_text(settings_to_toml(settings))
    apply_topics(settings)
    return RunStack(settings, path, devstack, started)


def cleanup(stack: RunStack) -> None:
    """Delete the run's topics and Redis keys; stop stack processes this run started."""
    from jobpipe.connections import redis_client
    from jobpipe.wipe import delete_keys, delete_topics

    settings = stack.settings
    try:
        delete_topics(settings.kafka, settings.namespace)
        client = redis_client(settings.redis)
        delete_keys(client, settings.namespace)
        client.close()
    except Exception as exc:  # cleanup must never hide the run's result
        log.warning("could not remove the run's topics and keys: %s", exc)
    if stack.devstack is not None and stack.started:
        stack.devstack.down()

