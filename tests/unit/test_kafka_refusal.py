"""When refused credentials are the answer: a spell of refusals over REFUSED_FOR_S."""

from __future__ import annotations

from confluent_kafka import KafkaError

from jobpipe.errors import ConfigError
from jobpipe.kafka_refusal import REFUSED_FOR_S, SPELL_GAP_S, Refusals

BOOTSTRAP = "127.0.0.1:9"
REFUSED = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials")


def test_one_refusal_is_not_the_answer_however_long_ago():
    refusals = Refusals(BOOTSTRAP)
    assert refusals.heard(REFUSED, now_s=100.0)
    assert refusals.answer() is None  # then accepted: nothing more is heard


def test_refusals_over_refused_for_s_are_the_answer_in_one_line():
    refusals = Refusals(BOOTSTRAP)
    refusals.heard(REFUSED, now_s=100.0)
    refusals.heard(REFUSED, now_s=100.0 + REFUSED_FOR_S / 2)
    assert refusals.answer() is None
    refusals.heard(REFUSED, now_s=100.0 + REFUSED_FOR_S)
    error = refusals.answer()
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"Kafka at {BOOTSTRAP} refused this client: SASL authentication")
    assert "\n" not in str(error)


def test_refusals_further_apart_than_the_gap_are_two_spells():
    refusals = Refusals(BOOTSTRAP)
    refusals.heard(REFUSED, now_s=100.0)
    refusals.heard(REFUSED, now_s=100.0 + SPELL_GAP_S + 1)
    assert refusals.answer() is None
    refusals.heard(REFUSED, now_s=100.0 + SPELL_GAP_S + 1 + REFUSED_FOR_S)
    assert refusals.answer() is not None


def test_a_broker_that_is_down_is_no_refusal():
    refusals = Refusals(BOOTSTRAP)
    for now_s in (100.0, 110.0):
        assert not refusals.heard(KafkaError(KafkaError._TRANSPORT, "Connection refused"),
                                  now_s=now_s)
    assert refusals.first_s is None
    assert refusals.answer() is None


def test_a_sasl_handshake_broken_on_our_side_is_no_refusal():
    """librdkafka reports a SASL handshake that failed locally (a broker frozen
    or gone mid-handshake) as _AUTHENTICATION too."""
    refusals = Refusals(BOOTSTRAP)
    broken = KafkaError(KafkaError._AUTHENTICATION,
                        "sasl_plaintext://127.0.0.1:9/bootstrap: SASL SCRAM-SHA-256 mechanism "
                        "handshake failed: Local: Broker transport failure: broker's "
                        "supported mechanisms: ")
    for now_s in (100.0, 101.0, 103.0):
        assert not refusals.heard(broken, now_s=now_s)
    assert refusals.answer() is None
