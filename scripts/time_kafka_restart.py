"""How long a dev-stack Kafka node takes to serve: first start, after kill -9,
after a clean stop.

    .venv/bin/python scripts/time_kafka_restart.py [--rounds 2] [--fresh-archive] \
        [--property broker.session.timeout.ms=9000 ...]

Each round starts a private one-node stack (``DevStack`` on free loopback ports
in a temporary directory, as the tests' private stacks are), times
``start_kafka`` three times (first start, after ``kill_kafka``, after
``stop_kafka``) and stops it by PID. Each figure says whether the broker's
class archive (:mod:`jobpipe.devstack.class_archive`) was there to read.
``--fresh-archive`` gives the runs a jar directory of their own (links to the
shared jars), so they start with no archive and write their own.
``--property`` overrides a ``server.properties`` entry, to compare against
Kafka's own defaults (the dev stack's broker session:
``jobpipe.devstack.kafka_broker.BROKER_SESSION_PROPERTIES``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from jobpipe.devstack import DevStack, class_archive
from jobpipe.devstack.kafka_broker import jvm_options
from jobpipe.devstack.kafka_jars import ensure_kafka_jars, linked_jars
from jobpipe.devstack.ports import free_port, free_port_block


def one_round(root: Path, libs: Path | None, properties: dict[str, str]) -> list[str]:
    """``name seconds (archive or none)`` for each of the three starts."""
    stack = DevStack(root, redis_port=free_port(), kafka_port=free_port_block(2),
                     libs_dir=libs, kafka_heap="512m", kafka_extra_properties=properties)
    archive = class_archive.archive_path(libs or ensure_kafka_jars(), "java",
                                         jvm_options(os.environ))
    figures = []
    try:
        for name, before in (("first start", None), ("after kill -9", stack.kill_kafka),
                             ("after clean stop", stack.stop_kafka)):
            if before is not None:
                before()
            used = "archive" if archive.exists() else "no archive"
            start = time.monotonic()
            stack.start_kafka()
            figures.append(f"{name} {time.monotonic() - start:.2f} s ({used})")
    finally:
        stack.down(timeout_s=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fresh-archive", action="store_true")
    parser.add_argument("--property", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    properties = dict(p.split("=", 1) for p in args.property)
    with tempfile.TemporaryDirectory(prefix="kafka-restart-") as tmp:
        libs = linked_jars(Path(tmp)) if args.fresh_archive else None
        for n in range(1, args.rounds + 1):
            figures = one_round(Path(tmp) / f"round{n}", libs, properties)
            print(f"round {n}: " + ", ".join(figures), flush=True)


if __name__ == "__main__":
    main()
