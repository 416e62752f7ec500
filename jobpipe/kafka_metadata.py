"""A metadata request that fails fast when no broker can be reached.

``list_topics(timeout=10)`` against a bootstrap address nobody listens on
waits the whole timeout, though librdkafka knows within milliseconds that the
connection was refused: it says so to ``error_cb`` (``_ALL_BROKERS_DOWN``),
which is served only by a poll. One-shot commands (``jobpipe check``, the DLQ
tools) ask in short slices and look at that verdict between them, so a
stopped broker is one clear line at once, while a slow but reachable one
still gets the whole timeout. ``jobpipe topics apply`` asks the same way but
waits out a stopped broker (``wait_while_down``): it may be starting.

Refused credentials (SASL, TLS) reach ``error_cb`` too, at the first
connection; :mod:`jobpipe.kafka_refusal` says when they end the wait.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from jobpipe.errors import KafkaUnavailable
from jobpipe.kafka_refusal import CREDENTIALS_REFUSED, Refusals

# How long one metadata attempt may wait before the verdict is looked at again.
SLICE_S = 0.2
# Codes whose words say why no broker answered: a refused connection, a name not
# resolved, a SASL handshake broken on this side (CREDENTIALS_REFUSED, not a refusal).
_FAILURE_WORDS = frozenset({KafkaError._TRANSPORT, KafkaError._RESOLVE}) | CREDENTIALS_REFUSED


class BrokerWatch:
    """An ``error_cb`` that remembers whether every bootstrap broker is down, and
    why, and the brokers' refusals of this client.

    Pass :meth:`config` into the client's configuration.

    Args:
        bootstrap: the client's ``bootstrap.servers``, named in errors.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.all_down = False
        self.last_failure = ""
        self.refusals = Refusals(bootstrap)  # served by a poll

    def __call__(self, error: KafkaError) -> None:
        refused = self.refusals.heard(error)
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_down = True
        elif not refused and error.code() in _FAILURE_WORDS:
            self.last_failure = error.str()

    def config(self) -> dict[str, Any]:
        return {"error_cb": self}


def fetch_metadata(client: AdminClient | Consumer, watch: BrokerWatch,
                   timeout_s: float, topic: str | None = None,
                   wait_while_down: bool = False) -> ClusterMetadata:
    """The cluster's metadata (of ``topic`` alone when given).

    Args:
        client: built with ``watch.config()``.
        wait_while_down: brokers that refuse connections (still starting) are
            waited for, up to ``timeout_s``, instead of failing at once.

    Raises:
        KafkaUnavailable: every broker refused the connection, or none answered
            in ``timeout_s``.
        ConfigError: the brokers refused this client's credentials
            (:meth:`Refusals.answer`, or any refusal at ``timeout_s``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            return client.list_topics(topic, timeout=max(0.0, min(left, SLICE_S)))
        except KafkaException as exc:
            failure = exc
        client.poll(0)  # serves error_cb (nothing is assigned: no message is taken)
        now = time.monotonic()
        refusals = watch.refusals
        if refusals.first_s is not None:  # a refused client also finds all brokers down
            refused = refusals.answer() or (refusals.error() if now >= deadline else None)
            if refused is not None:
                raise refused
        elif (watch.all_down and not wait_while_down) or now >= deadline:
            why = watch.last_failure or ("all brokers are down" if watch.all_down
                                         else _detail(failure))
            raise KafkaUnavailable(f"Kafka at {watch.bootstrap} is unreachable: {why}")


def _detail(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
