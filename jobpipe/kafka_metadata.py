"""A metadata request that fails fast when no broker can be reached.

``list_topics(timeout=10)`` against a bootstrap address nobody listens on
waits the whole timeout, though librdkafka knows within milliseconds that the
connection was refused: it says so to ``error_cb`` (``_ALL_BROKERS_DOWN``),
which is served only by a poll. One-shot commands (``jobpipe check``, the DLQ
tools) ask in short slices and look at that verdict between them, so a
stopped broker is one clear line at once, while a slow but reachable one
still gets the whole timeout.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from jobpipe.errors import KafkaUnavailable

# How long one metadata attempt may wait before the verdict is looked at again.
SLICE_S = 0.2
_CONNECT_FAILURES = frozenset({KafkaError._TRANSPORT, KafkaError._RESOLVE})


class BrokerWatch:
    """An ``error_cb`` that remembers whether every bootstrap broker is down, and why.

    Pass :meth:`config` into the client's configuration.
    """

    def __init__(self) -> None:
        self.all_down = False
        self.last_failure = ""

    def __call__(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_down = True
        elif error.code() in _CONNECT_FAILURES:
            self.last_failure = error.str()

    def config(self) -> dict[str, Any]:
        return {"error_cb": self}


def fetch_metadata(client: AdminClient | Consumer, watch: BrokerWatch, bootstrap: str,
                   timeout_s: float, topic: str | None = None) -> ClusterMetadata:
    """The cluster's metadata (of ``topic`` alone when given).

    Args:
        client: built with ``watch.config()``.
        bootstrap: named in the error.

    Raises:
        KafkaUnavailable: every broker refused the connection, or none answered
            in ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            return client.list_topics(topic, timeout=max(0.0, min(left, SLICE_S)))
        except KafkaException as exc:
            if left <= SLICE_S:
                raise KafkaUnavailable(f"Kafka at {bootstrap} is unreachable: "
                                       f"{watch.last_failure or _detail(exc)}") from None
        client.poll(0)  # serves error_cb (nothing is assigned: no message is taken)
        if watch.all_down:
            raise KafkaUnavailable(f"Kafka at {bootstrap} is unreachable: "
                                   f"{watch.last_failure or 'all brokers are down'}")


def _detail(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
