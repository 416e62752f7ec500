"""When a consumer's group membership is suspect, read from librdkafka statistics;
which consumer error says that another member took a static member's name."""

from __future__ import annotations

from confluent_kafka import KafkaError

from consumers.group_health import GroupHealth, name_taken

# As librdkafka 2.16 reports a fence (seen against the dev stack's broker).
FENCED = ("Fatal error: Broker: Static consumer fenced by other consumer with same "
          "group.instance.id: OffsetCommit failed: Broker: Static consumer fenced by other "
          "consumer with same group.instance.id")


def _stats(state: str, join: str) -> dict:
    return {"cgrp": {"state": state, "join_state": join}}


def test_a_steady_group_is_never_suspect():
    health = GroupHealth(60, now=0)
    for t in range(0, 600, 5):
        health.observe(_stats("up", "steady"), t)
        assert not health.suspect(t)


def test_a_group_that_never_settles_becomes_suspect_after_the_limit():
    health = GroupHealth(60, now=0)
    health.observe(_stats("up", "steady"), 10)
    for t in range(15, 71, 5):
        health.observe(_stats("wait-broker-transport", "init"), t)
        assert not health.suspect(t)
    assert health.suspect(75)
    assert health.unhealthy_s(75) == 65


def test_joining_from_the_start_counts():
    health = GroupHealth(60, now=0)
    health.observe(_stats("query-coord", "init"), 5)
    assert health.suspect(61)


def test_a_broker_that_does_not_answer_is_waited_for_and_asked_every_quarter_limit():
    health = GroupHealth(60, now=0)
    assert health.suspect(100)
    health.probed(100, answered=False)  # down or frozen
    assert not health.stuck(100)
    assert not health.suspect(114)
    assert health.suspect(116)
    health.probed(116, answered=False)
    assert not health.stuck(200)


def test_once_the_broker_answers_the_group_gets_half_the_limit_more_to_settle():
    health = GroupHealth(60, now=0)
    health.probed(100, answered=True)  # right after a thaw: not yet
    assert not health.stuck(100)
    health.probed(116, answered=True)
    assert not health.stuck(116)
    health.probed(131, answered=True)
    assert health.stuck(131)


def test_settling_or_a_silent_broker_restarts_the_grace():
    health = GroupHealth(60, now=0)
    health.probed(100, answered=True)
    health.probed(116, answered=False)
    health.probed(131, answered=True)
    assert not health.stuck(131)  # answering again only since 131
    health.observe(_stats("up", "steady"), 140)
    assert not health.suspect(150)
    assert not health.stuck(161)


def test_a_rebalance_shorter_than_the_limit_is_not_suspect():
    health = GroupHealth(60, now=0)
    health.observe(_stats("up", "wait-unassign-call"), 30)
    health.observe(_stats("up", "steady"), 50)
    health.observe(_stats("up", "wait-sync"), 100)
    assert not health.suspect(100)


def test_a_fence_is_told_from_other_errors():
    assert name_taken(KafkaError(KafkaError._FATAL, FENCED))
    unreleased = "Fatal error: Broker: The instance ID is still used by another member in " \
                 "the consumer group: ConsumerGroupHeartbeat fatal error: ..."
    assert name_taken(KafkaError(KafkaError._FATAL, unreleased))  # KIP-848's refusal
    assert not name_taken(None)
    assert not name_taken(KafkaError(KafkaError._FATAL, "Fatal error: Broker: Group "
                                     "authorization failed: ..."))
    assert not name_taken(KafkaError(KafkaError.FENCED_INSTANCE_ID))  # not the fatal report
