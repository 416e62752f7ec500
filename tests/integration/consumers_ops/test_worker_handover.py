"""A worker that stops lets go of its partitions, and the one that stays takes them
(a second worker joins and stops, ROUNDS times). The one that joins is a dynamic
member, which leaves the group as it stops, so a round does not sit out a static
member's session (6 s; test_liveness.py waits one out); one that never closed
its consumer would stay until its session lapsed, and never stop at all.

Both workers re-read pause flags every millisecond, so a stopping one is
nearly always inside a Redis command when its shutdown cancels its tasks:
redis-py can absorb such a cancel, and a shutdown that waited for that task
forever never closed its consumer. The stopped worker then stayed in the group
holding half the partitions, and jobs there were never run (``jobpipe bench
worker`` hung so, issues 13 and 14).
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_admin_config
from jobpipe.envelope import encode
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import make_job, produce, wait_for, worker_running

pytestmark = pytest.mark.integration

PARTITIONS = 4
GROUP_SETTLES_S = 90.0  # joins and rebalances on a loaded box
# Before the fix about two stops in three hung; three rounds catch it nearly always.
ROUNDS = 3


def shares(settings: Settings) -> list[int]:
    """How many partitions each member of the worker group holds, fewest first."""
    admin = AdminClient(kafka_admin_config(settings.kafka))
    group = names.group_id(settings.namespace, "workers")
    try:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException:  # no coordinator yet: ask again
        return []
    return sorted(len(m.assignment.topic_partitions) for m in desc.members)


def test_a_stopped_worker_hands_its_partitions_to_the_one_that_stays(make_settings,
                                                                     kafka_cleanup):
    queues = {"default": {"partitions": PARTITIONS}}
    settings = make_settings(queues=queues, worker={"control_interval_s": 0.001})
    joiner = make_settings(queues=queues, worker={"control_interval_s": 0.001,
                                                  "membership": "dynamic"})
    apply_topics(settings)
    topic = names.main_topic(settings.namespace, "default")
    with worker_running(settings) as stays:
        assert wait_for(lambda: shares(settings) == [PARTITIONS], GROUP_SETTLES_S)
        for _ in range(ROUNDS):
            with worker_running(joiner):  # its exit asserts that the stop ended
                assert wait_for(lambda: shares(settings) == [2, 2], GROUP_SETTLES_S)
            assert wait_for(lambda: shares(settings) == [PARTITIONS], GROUP_SETTLES_S)
        jobs = [make_job(task="work") for _ in range(PARTITIONS)]
        for partition, job in enumerate(jobs):
            produce(settings, topic, [(None, encode(job))], partition=partition)
        assert wait_for(lambda: set(stays) == {j.id for j in jobs}, GROUP_SETTLES_S)
