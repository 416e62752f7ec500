"""When a broker's refusal of this client's credentials is the answer.

A refused connection (SASL credentials, a TLS certificate) reaches the
client's ``error_cb``, and librdkafka tries again after a backoff, for ever:
a stage with a wrong password would log it and serve nothing. One refusal is
not the answer yet (a SCRAM user created a moment before may be refused once
or twice before it reaches the listener); refusals heard over
``REFUSED_FOR_S``, none more than ``SPELL_GAP_S`` after the one before, are.
Then a one-shot command (:mod:`jobpipe.kafka_metadata`) and a stage (the
bridge's producer, the worker's consumer) stop with one line naming the
refusal, as a wrong Redis password stops them at start.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError

from jobpipe.errors import ConfigError

# How long refusals must go on before they are the answer.
REFUSED_FOR_S = 2.0
# Refusals further apart are two spells. librdkafka retries after reconnect.backoff.ms
# (100 ms), doubling up to reconnect.backoff.max.ms (10 s): a spell's first
# refusals come well within REFUSED_FOR_S, whatever the maximum.
SPELL_GAP_S = 15.0
# The codes of a connection refused for what this client presented.
CREDENTIALS_REFUSED = frozenset({KafkaError._AUTHENTICATION,
                                 KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL})
# librdkafka also reports a SASL handshake that failed on its side (the connection
# broke, or timed out: "SASL SCRAM-SHA-256 mechanism handshake failed: Local: Broker
# transport failure") as _AUTHENTICATION: a broker frozen mid-handshake, no refusal.
_LOCAL_FAILURE = "Local: "


def is_refusal(error: KafkaError) -> bool:
    """Whether ``error`` is the broker refusing this client's credentials."""
    return error.code() in CREDENTIALS_REFUSED and _LOCAL_FAILURE not in error.str()


class Refusals:
    """The latest spell of refusals one client (or one stage's clients) heard.

    Feed it from ``error_cb`` (:meth:`heard`); ask :meth:`answer` where the
    caller can stop. Both run on the thread that polls the client (a consumer
    being replaced may still call in while it closes on a side thread: plain
    attribute writes, at worst a spell starts over).

    Args:
        bootstrap: named in the error.
    """

    __slots__ = ("_bootstrap", "_detail", "first_s", "last_s")

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._detail = ""
        self.first_s: float | None = None  # monotonic, the spell's first refusal
        self.last_s = 0.0

    def heard(self, error: KafkaError, now_s: float | None = None) -> bool:
        """Note ``error`` if it is a refusal; whether it was."""
        if not is_refusal(error):
            return False
        now_s = time.monotonic() if now_s is None else now_s
        if self.first_s is None or now_s - self.last_s > SPELL_GAP_S:
            self.first_s = now_s
        self.last_s, self._detail = now_s, error.str()
        return True

    def answer(self) -> ConfigError | None:
        """The error to stop with, once the spell has lasted ``REFUSED_FOR_S``."""
        if self.first_s is None or self.last_s - self.first_s < REFUSED_FOR_S:
            return None
        return self.error()

    def error(self) -> ConfigError:
        """The one line naming the latest refusal (call after one was heard)."""
        return ConfigError(f"Kafka at {self._bootstrap} refused this client: {self._detail}; "
                           "check the security keys of kafka.config (sasl.username, "
                           "sasl.password, ssl.* ...)")
