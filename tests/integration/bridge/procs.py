"""Test helpers: run ``jobpipe bridge`` as a real subprocess on a test's settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from jobpipe import names
from jobpipe.settings import Settings
from tests.redis_modes import redis_environ


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def write_config(path: Path, queues: dict[str, dict[str, Any]],
                 bridge: dict[str, Any] | None = None) -> Path:
    """A jobpipe.toml with these queues and [bridge] values."""
    lines = []
    for name, body in queues.items():
        lines.append(f"[queues.{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
    if bridge:
        lines.append("[bridge]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in bridge.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_bridge(settings: Settings, config: Path, *args: str,
                 log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m jobpipe bridge ARGS`` with this test's namespace and services."""
    env = {**os.environ, "JOBPIPE_CONFIG": str(config), "JOBPIPE_NAMESPACE": settings.namespace,
           **redis_environ(settings), "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    out = log_path.open("ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "jobpipe", "bridge", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def ready_total(client: redis.Redis, settings: Settings, queue: str) -> int:
    """Jobs waiting in a plain queue's ready lists."""
    spec = settings.topology.get(queue)
    pipe = client.pipeline(transaction=False)
    for level in spec.levels:
        for shard in range(spec.shards):
            pipe.llen(names.ready_key(settings.namespace, queue, shard, level,
                                      own_slot=spec.shard_slots))
    return sum(pipe.execute())


def inflight_total(client: redis.Redis, settings: Settings, queue: str) -> int:
    """Jobs in every bridge's in-flight lists of a queue."""
    spec = settings.topology.get(queue)
    keys = [key for slot in spec.slots
            for key in client.scan_iter(match=names.inflight_pattern(settings.namespace, queue,
                                                                     slot), count=1000)]
    return sum(client.llen(k) for k in keys)


def wait_for(condition, timeout_s: float, interval_s: float = 0.01, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def kill_9_mid_move_then_drain(settings: Settings, config: Path, client: redis.Redis,
                               queue: str, n_jobs: int, log_path: Path) -> int:
    """Start a bridge on ``n_jobs`` waiting jobs, kill -9 it while jobs sit in its
    in-flight lists, start it again under the same name, wait until ``queue`` is
    drained and stop it; returns how many jobs were in flight at the kill."""
    first = start_bridge(settings, config, "--bridge-id", "crashy", log_path=log_path)
    try:
        # in the middle: some moved, jobs sitting in the in-flight lists right now
        wait_for(lambda: ready_total(client, settings, queue) < n_jobs * 0.9
                 and inflight_total(client, settings, queue) > 0, 120, interval_s=0.002,
                 what="mid-move")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    stranded = inflight_total(client, settings, queue)
    second = start_bridge(settings, config, "--bridge-id", "crashy", log_path=log_path)
    try:
        wait_for(lambda: ready_total(client, settings, queue) == 0
                 and inflight_total(client, settings, queue) == 0, 180, interval_s=0.2,
                 what="drained after restart")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log_path.read_text()[-3000:]
    return stranded
