"""A private redis-server a test may kill and restart (never the shared one)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """One redis-server on a free loopback port, under ``root``; stopped by PID."""

    def __init__(self, root: Path, *, policy: str = "noeviction", appendonly: str = "yes",
                 maxmemory_bytes: int | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.policy = policy
        self.appendonly = appendonly
        self.maxmemory_bytes = maxmemory_bytes
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.root.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.root), "--appendonly", self.appendonly,
                "--appendfsync", "always", "--maxmemory-policy", self.policy, "--save", "",
                "--logfile", str(self.root / "redis.log")]
        if self.maxmemory_bytes:
            args += ["--maxmemory", str(self.maxmemory_bytes)]
        self.proc = subprocess.Popen(args, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private redis on {self.port} did not start") from None
                time.sleep(0.05)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL by PID and wait; the AOF (appendfsync always) keeps what was acked."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def redis_server_missing() -> bool:
    return shutil.which("redis-server") is None
