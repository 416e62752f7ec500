"""``jobpipe dev``: the local Redis and Kafka (``up``, ``down``, ``status``, ``fetch``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from jobpipe.devstack import DevStack, ProcessStatus, StackInfo, find_tool
from jobpipe.errors import StackError

COMPOSE_FILE = Path("docker/compose.yml")
_root_option = click.option("--root", type=click.Path(file_okay=False, path_type=Path),
                            default=Path(".jobpipe"), show_default=True,
                            help="Directory for config, data, logs and PID files.")


@click.group()
def dev() -> None:
    """A local Redis and Kafka for development, no Docker needed."""


def run_docker_compose(*args: str, compose_file: Path = COMPOSE_FILE) -> None:
    """``docker compose -p jobpipe -f docker/compose.yml ARGS``, once an engine answers.

    Raises:
        StackError: no docker CLI, no engine, no compose file, or compose failed.
    """
    docker = find_tool("docker")
    probe = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
    if probe.returncode != 0:
        raise StackError("no Docker engine answers here (`docker info` failed); "
                         "run `jobpipe dev up` without --docker")
    if not compose_file.exists():
        raise StackError(f"{compose_file} not found; run from the repository root")
    command = [docker, "compose", "-p", "jobpipe", "-f", str(compose_file), *args]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise StackError(f"docker compose {' '.join(args)} failed (exit {result.returncode})")


def format_info(info: StackInfo) -> list[str]:
    """The lines ``dev up`` prints: addresses, then environment assignments."""
    redis_line = (f"redis  {info.redis_url}  (pid {info.redis_pid})" if not info.redis_cluster_pids
                  else f"redis cluster  {info.redis_url}  "
                       f"(pids {', '.join(map(str, info.redis_cluster_pids))})")
    lines = [redis_line,
             f"kafka  {info.kafka_bootstrap}  (pids {', '.join(map(str, info.kafka_pids))})"]
    lines.append(f"started: {', '.join(info.started)}" if info.started
                 else "already running")
    if info.kafka_start_s is not None:
        fresh = any(name.startswith("kafka") for name in info.started)
        lines.append(f"kafka start to ready: {info.kafka_start_s:.2f} s"
                     + ("" if fresh else " (last start)"))
    lines += [f"{name}={value}" for name, value in info.env().items()]
    return lines


def format_status(rows: list[ProcessStatus]) -> list[str]:
    """One line per process: name, address, pid, RSS and Kafka start time."""
    lines = []
    for row in rows:
        if not row.alive:
            lines.append(f"{row.name:11} {row.address:16} not running")
            continue
        line = f"{row.name:11} {row.address:16} pid {row.pid:<8}"
        if row.role is not None:
            line += f" {row.role:8}"
        if row.rss_bytes is not None:
            line += f" rss {row.rss_bytes / 2**20:7.1f} MiB"
        if row.start_s is not None:
            line += f"  started in {row.start_s:.2f} s"
        lines.append(line)
    return lines


@dev.command("up")
@_root_option
@click.option("--brokers", type=click.Choice(["1", "3"]), default=None,
              help="Kafka nodes (default: as last time, else 1).")
@click.option("--redis-port", type=int, default=None,
              help="Default: as last time, else 16379. With --redis-cluster: the first "
                   "node's; the nodes take 2N ports from it (and those + 10000 for the bus).")
@click.option("--redis-cluster", "redis_cluster", type=click.IntRange(min=0), default=None,
              metavar="N", help="A Redis Cluster of N primaries (3 or more), one replica "
                                "each, instead of one Redis; 0 for one Redis. Default: as "
                                "last time, else one Redis.")
@click.option("--kafka-port", type=int, default=None,
              help="Node 1's port; node n uses +2(n-1). Default: as last time, else 19092.")
@click.option("--docker", "use_docker", is_flag=True,
              help="Use docker/compose.yml instead (needs a Docker engine).")
def up(root: Path, brokers: str | None, redis_port: int | None, redis_cluster: int | None,
       kafka_port: int | None, use_docker: bool) -> None:
    """Start Redis and Kafka (idempotent) and print their addresses."""
    if use_docker:
        run_docker_compose("up", "-d", "--build")
        return
    stack = DevStack.load(root, redis_port=redis_port, kafka_port=kafka_port,
                          brokers=int(brokers) if brokers else None,
                          redis_cluster=redis_cluster)
    for line in format_info(stack.up()):
        click.echo(line)


@dev.command("down")
@_root_option
@click.option("--docker", "use_docker", is_flag=True, help="docker compose down instead.")
def down(root: Path, use_docker: bool) -> None:
    """Stop exactly the processes `dev up` started (by PID, never by name)."""
    if use_docker:
        run_docker_compose("down")
        return
    stopped = DevStack.load(root).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@dev.command("status")
@_root_option
def status(root: Path) -> None:
    """Show what runs where; exit 0 when everything runs, 3 otherwise."""
    stack = DevStack.load(root)
    rows = stack.status()
    for line in format_status(rows):
        click.echo(line)
    if all(row.alive for row in rows):
        for name, value in stack.env().items():
            click.echo(f"{name}={value}")
    else:
        sys.exit(3)


@dev.command("fetch")
def fetch() -> None:
    """Download the Kafka jars into the shared cache (once; `up` does it too)."""
    from jobpipe.devstack.kafka_jars import ensure_kafka_jars

    click.echo(str(ensure_kafka_jars()))
