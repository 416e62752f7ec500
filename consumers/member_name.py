"""A worker's static member name (``group.instance.id``), claimed on its host.

A restarted static member takes its partitions back at once, where a dynamic
one waits for the dead member's session (docs/reliability.md). That needs a
name that stays the same across restarts and that no other live process of
the group uses. A worker claims the lowest free slot ``n`` of its group on
this host by holding an exclusive ``flock`` on ``<dir>/<group>.<n>.lock``,
and is named ``<hostname>-<n>``:

- the kernel drops the lock when its holder dies, ``kill -9`` included, so a
  worker restarted on the same host claims the slot the dead one had (the
  others still hold theirs) and comes back under the dead one's name;
- two live processes of one host never hold the same slot, and other hosts
  differ by hostname (a container has its own hostname and its own /tmp,
  so it claims slot 0).

Two hosts with the same hostname and separate lock directories can still pick
the same name; the member fenced then falls back to dynamic membership
(:meth:`consumers.group_health.GuardedConsumer.renew_if_name_taken`).

A process forked by a handler inherits the open lock and keeps the slot while
it lives: its worker's restart then claims another slot, a new name.

A released slot's lock file is removed (by the process that claimed it, while
it still holds the lock), so the directory does not fill with the files of
groups long gone. A claimer that locked a file just removed sees that its path
now names another file, or none, and tries again.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import stat
import tempfile
from pathlib import Path

from jobpipe.errors import ConfigError

# group.instance.id may hold only these (Kafka's rule for names); anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def members_dir() -> Path:
    """This user's lock directory: ``<tempdir>/jobpipe-<uid>/members``. Per user so that
    nobody else can take (or hold) a slot; the temp dir follows ``$TMPDIR``."""
    return Path(tempfile.gettempdir()) / f"jobpipe-{os.getuid()}" / "members"


def _private_dirs(*paths: Path) -> None:
    """Create each of ``paths`` 0700 (a parent before its child), and refuse one another
    user owns or may write: a shared /tmp lets anyone create our directory's name first."""
    for part in paths:
        try:
            part.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"worker.membership: cannot create {part} for the member "
                              f"name locks ({exc.strerror or exc})") from None
        info = part.lstat()
        if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            raise ConfigError(f"worker.membership: {part} is not a directory of this "
                              "user's alone; remove it, or set worker.instance_id")


class MemberSlot:
    """A claimed slot: its member name, held until :meth:`release` (or until it is
    garbage, or the process ends).

    Attributes:
        index: the slot number ``n``.
        name: ``<hostname>-<n>``, the ``group.instance.id`` to use.
    """

    __slots__ = ("_fd", "_owner", "_path", "index", "name")

    def __init__(self, index: int, name: str, fd: int, path: Path) -> None:
        self.index, self.name, self._fd, self._path = index, name, fd, path
        self._owner = os.getpid()

    def release(self) -> None:
        """Free the slot for the next worker of this host (idempotent)."""
        if self._fd < 0:
            return
        if os.getpid() == self._owner:  # not a forked child: its parent holds on
            self._path.unlink(missing_ok=True)  # before the lock goes (see the module)
        os.close(self._fd)  # closing the only descriptor drops the flock
        self._fd = -1

    def __del__(self) -> None:  # an owner that never ran (a Fetcher never started)
        self.release()


def claim(group: str, directory: Path | None = None) -> MemberSlot:
    """Claim the lowest free slot of ``group`` on this host (see the module).

    Args:
        group: the consumer group id; workers of different groups get slots apart.
        directory: where the lock files live (default :func:`members_dir`).

    Raises:
        ConfigError: the lock directory cannot be made or is not this user's alone.
    """
    if directory is None:
        directory = members_dir()
        _private_dirs(directory.parent, directory)
    else:
        _private_dirs(directory)
    safe_group = _UNSAFE.sub("_", group)
    host = _UNSAFE.sub("_", socket.gethostname())
    n = 0
    while True:
        path = directory / f"{safe_group}.{n}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process holds it
            os.close(fd)
            n += 1
            continue
        if not _names(path, fd):  # released and removed since we opened it: again
            os.close(fd)
            continue
        return MemberSlot(n, f"{host}-{n}", fd, path)


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
