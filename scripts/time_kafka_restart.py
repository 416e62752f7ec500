"""How long a dev-stack Kafka node takes to serve again: first start, after kill -9,
after a clean stop.

    .venv/bin/python scripts/time_kafka_restart.py [--rounds 2] \
        [--property broker.session.timeout.ms=9000 ...]

Each round starts a private one-node stack (``DevStack`` on free loopback ports
in a temporary directory, as the tests' private stacks are), times
``start_kafka`` three times (first start, after ``kill_kafka``, after
``stop_kafka``) and stops it by PID. ``--property`` overrides a
``server.properties`` entry, to compare against Kafka's own defaults. The
figures are in the commit that set the dev stack's broker session
(``jobpipe.devstack.kafka_broker.BROKER_SESSION_PROPERTIES``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jobpipe.devstack import DevStack
from jobpipe.devstack.ports import free_port, free_port_block


def _timed(step: Callable[[], object]) -> float:
    start = time.monotonic()
    step()
    return time.monotonic() - start


def one_round(properties: dict[str, str]) -> dict[str, float]:
    """Seconds to ready: first start, restart after kill -9, restart after a clean stop."""
    with tempfile.TemporaryDirectory(prefix="kafka-restart-") as root:
        stack = DevStack(Path(root), redis_port=free_port(), kafka_port=free_port_block(2),
                         kafka_heap="512m", kafka_extra_properties=properties)
        try:
            first = _timed(stack.start_kafka)
            stack.kill_kafka()
            after_kill = _timed(stack.start_kafka)
            stack.stop_kafka()
            after_stop = _timed(stack.start_kafka)
        finally:
            stack.down(timeout_s=20)
    return {"first start": first, "after kill -9": after_kill, "after clean stop": after_stop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    properties = dict(p.split("=", 1) for p in args.property)
    for n in range(1, args.rounds + 1):
        figures = one_round(properties)
        print(f"round {n}: " + ", ".join(f"{k} {v:.2f} s" for k, v in figures.items()),
              flush=True)


if __name__ == "__main__":
    main()
