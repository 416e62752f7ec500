"""A Debian ``redis-server`` on loopback, with AOF on and eviction off."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobpipe.devstack.certs import TlsFiles
from jobpipe.devstack.ports import port_is_free
from jobpipe.devstack.processes import OwnedProcess
from jobpipe.errors import StackError

AOF_REWRITE_MIN_SIZE = "1gb"  # see write_config


@dataclass(frozen=True)
class RedisConfig:
    """How the dev Redis runs.

    Attributes:
        port: loopback port.
        appendfsync: ``everysec`` (default), ``always`` or ``no``.
        maxmemory_bytes: memory cap (None = unlimited); with ``noeviction`` a
            full Redis refuses writes instead of dropping keys.
        extra_config: more ``redis.conf`` lines (``requirepass``, ``user``...).
        tls: serve TLS only, on ``port`` (the plain port is off), with these
            certificates; clients must present one signed by the same CA.
    """

    port: int
    appendfsync: str = "everysec"
    maxmemory_bytes: int | None = None
    extra_config: tuple[str, ...] = field(default_factory=tuple)
    tls: TlsFiles | None = None

    def __post_init__(self) -> None:
        if self.appendfsync not in ("always", "everysec", "no"):
            raise StackError(f"redis appendfsync: {self.appendfsync!r} is not always, "
                             "everysec or no")


def _client_context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.client_cert), str(tls.client_key))
    return context


def _ping_on(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\r\n")
    return sock.recv(256).split(b"\r\n", 1)[0]


def _ping(port: int, tls: TlsFiles | None = None) -> bytes:
    """One inline PING; the first reply line (empty when nothing answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), 1.0) as raw:
            if tls is None:
                return _ping_on(raw)
            with _client_context(tls).wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                return _ping_on(sock)
    except OSError:  # ssl.SSLError is one too: a TLS port not ready yet
        return b""


class RedisServer:
    """One ``redis-server`` child process with its data under ``home``."""

    def __init__(self, home: Path, config: RedisConfig, executable: str = "redis-server",
                 name: str = "redis") -> None:
        self.home = home
        self.config = config
        self.executable = executable
        self.process = OwnedProcess(name, home / "redis.pid")

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (``rediss://`` when it serves TLS)."""
        scheme = "redis" if self.config.tls is None else "rediss"
        return f"{scheme}://127.0.0.1:{self.config.port}/0"

    @property
    def conf_path(self) -> Path:
        """The ``redis.conf`` written at start."""
        return self.home / "redis.conf"

    @property
    def log_path(self) -> Path:
        """Redis's own log file."""
        return self.home / "redis.log"

    def write_config(self) -> Path:
        """Write ``redis.conf`` (every start, so edits to the config take effect)."""
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            "bind 127.0.0.1",
            *self._listen_lines(),
            "protected-mode yes",
            "daemonize no",
            f"dir {data}",
            f"logfile {self.log_path}",
            "appendonly yes",
            f"appendfsync {self.config.appendfsync}",
            # A job queue's AOF grows with its traffic, not its data: at 30,000 jobs/s
            # ~19 MB/s. With the default 64 MB, a rewrite (a fork that writes every
            # key again) came every ~3 s and each stalled the pipeline ~100 ms on a
            # 2-core box (docs/operations.md, "Redis persistence").
            f"auto-aof-rewrite-min-size {AOF_REWRITE_MIN_SIZE}",
            'save ""',
            "maxmemory-policy noeviction",
        ]
        if self.config.maxmemory_bytes is not None:
            lines.append(f"maxmemory {self.config.maxmemory_bytes}")
        lines.extend(self.config.extra_config)
        self.conf_path.write_text("\n".join(lines) + "\n")
        return self.conf_path

    def _listen_lines(self) -> list[str]:
        tls = self.config.tls
        if tls is None:
            return [f"port {self.config.port}"]
        return ["port 0", f"tls-port {self.config.port}", f"tls-cert-file {tls.server_cert}",
                f"tls-key-file {tls.server_key}", f"tls-ca-cert-file {tls.ca}",
                "tls-auth-clients yes"]

    def start(self, timeout_s: float = 60.0) -> bool:
        """Start Redis unless ours already runs; wait until it answers PING.

        Returns:
            True when a process was started, False when ours already ran.

        Raises:
            StackError: the port is taken by another process, or Redis did not
                come up (the message carries the end of its log).
        """
        if self.process.alive:
            self.wait_ready(timeout_s)
            return False
        if not port_is_free(self.config.port):
            raise StackError(f"redis: port {self.config.port} is in use by another process; "
                             "pick another with --redis-port")
        self.write_config()
        self.process.spawn([self.executable, str(self.conf_path)], self.home / "redis.out",
                           match=[("redis-server", str(self.conf_path)),  # before it
                                  ("redis-server", f":{self.config.port}")])  # renames itself
        self.wait_ready(timeout_s)
        return True

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until Redis answers PING (``NOAUTH`` counts: it answers; ``LOADING`` does not).

        Raises:
            StackError: it exited, or did not answer in time.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            reply = _ping(self.config.port, self.config.tls)
            if reply.startswith((b"+PONG", b"-NOAUTH", b"-NOPERM")):
                return
            if not self.process.alive:
                raise StackError(f"redis-server exited at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise StackError(f"redis-server did not answer on port {self.config.port} "
                                 f"within {timeout_s:.0f} s; see {self.log_path}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        lines: Sequence[str] = []
        for path in (self.log_path, self.home / "redis.out"):
            if path.exists():
                lines = [*lines, *path.read_text(errors="replace").splitlines()[-3:]]
        return " | ".join(line.strip() for line in lines[-3:]) or f"see {self.log_path}"

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM (Redis fsyncs its AOF and exits), SIGKILL after ``timeout_s``."""
        return self.process.stop(timeout_s)

    def kill(self) -> bool:
        """SIGKILL: whatever was not yet fsynced to the AOF is lost."""
        return self.process.kill()
