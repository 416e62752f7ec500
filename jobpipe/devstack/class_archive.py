"""A class-data archive of the broker's classes (AppCDS), so a Kafka JVM starts sooner.

A JVM given ``-XX:SharedArchiveFile`` maps the classes it needs from one file
instead of reading and verifying them from 46 jars: about 2 s less to a
ready node on the build box (``scripts/time_kafka_restart.py --fresh-archive``
times starts without and with one).

Java 17 writes such an archive when a JVM started with
``-XX:ArchiveClassesAtExit`` exits by itself; a stopped node (SIGTERM) does,
taking about 4 s longer to stop. So a node started while there is no archive
writes one into its own directory, with a note of where it is to go and how
its JVM ran, and :func:`adopt` moves it there once that JVM is gone, if Java
started with the same options maps it: a JVM killed while writing leaves a
file it cannot, and a truncated archive crashes every JVM that maps it, so an
unchecked one is never shared. Adopting never raises: a node without an
archive only starts slower.

An archive fits one Java binary, one set of jars and one set of JVM options
(the collector decides how the archived classes are laid out), so its name is
a digest of all three, in the folder above the jars. A Java update or other
options leave the old archive behind (~50 MB), so a start marks the archive it
maps as used, and deletes those of the folder unused for :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WRITTEN_NAME = "classes.jsa"  # in a node's directory, written as its JVM exits
_NOTE_NAME = "classes.json"  # beside it: where it goes, and how its JVM ran
_CHECK_TIMEOUT_S = 60.0
# An archive no start has mapped for this long belongs to a Java or options gone by.
STALE_AFTER_S = 30 * 24 * 3600.0


def archive_path(libs_dir: Path, java: str, options: Sequence[str]) -> Path:
    """The shared archive for the jars in ``libs_dir``, the binary ``java`` and the
    JVM ``options`` (the user's collector and extra options)."""
    binary = Path(os.path.realpath(shutil.which(java) or java))
    parts = [str(binary), *options, str(libs_dir.resolve())]
    for path in (binary, *sorted(libs_dir.glob("*.jar"))):
        try:
            stat = path.stat()
        except OSError:
            continue
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    return libs_dir.parent / f"classes-{digest}.jsa"


def archive_options(archive: Path, written: Path | None) -> list[str]:
    """Read ``archive`` when there is one; else write one to ``written`` at exit
    (``None``: a short-lived tool, whose classes are not the broker's). Either
    way, the other archives of its folder that are stale are deleted."""
    used = _mark_used(archive)
    prune_stale(archive)
    if used:
        return [f"-XX:SharedArchiveFile={archive}"]
    if written is None:
        return []
    # Writing it logs a warning per class it leaves out (hundreds): not news.
    return [f"-XX:ArchiveClassesAtExit={written}", "-Xlog:cds=off"]


def note_writer(written: Path, archive: Path, java: str, options: Sequence[str],
                classpath: str) -> None:
    """Record, beside ``written``, what :func:`adopt` needs once its JVM is gone."""
    written.with_name(_NOTE_NAME).write_text(json.dumps(
        {"archive": str(archive), "java": java, "options": list(options),
         "classpath": classpath}))


def adopt(written: Path) -> None:
    """Make ``written`` (left by a JVM that is gone) the shared archive its note
    names, if Java maps it; delete it in every case. Never raises."""
    note = written.with_name(_NOTE_NAME)
    try:
        if written.exists():
            target = json.loads(note.read_text())
            archive = Path(target["archive"])
            if not archive.exists() and _maps(written, target):
                _publish(written, archive)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        log.warning("class archive %s not shared (%s); the broker starts without one",
                    written, exc)
    finally:
        written.unlink(missing_ok=True)
        note.unlink(missing_ok=True)


def _maps(written: Path, target: dict[str, Any]) -> bool:
    """Whether a JVM run as the writer was maps ``written`` (-Xshare:on fails
    rather than starting without it)."""
    args = [str(target["java"]), *map(str, target["options"]),
            f"-XX:SharedArchiveFile={written}", "-Xshare:on",
            "-XX:ErrorFile=/dev/null", "-XX:-CreateCoredumpOnCrash",
            "-cp", str(target["classpath"]), "-version"]
    check = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                           timeout=_CHECK_TIMEOUT_S)
    return check.returncode == 0


def _publish(written: Path, archive: Path) -> None:
    """Copy next to the archive, then rename: the node's directory may be on another
    file system, and a rename is atomic (a start sees all of it or nothing)."""
    staged = archive.with_name(f"{archive.name}.{os.getpid()}.tmp")
    try:
        with written.open("rb") as src, staged.open("wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(staged, archive)
    finally:
        staged.unlink(missing_ok=True)


def _mark_used(archive: Path) -> bool:
    """Set ``archive``'s modification time to now, if it exists: the time it was
    last used, which :func:`prune_stale` reads. Whether it exists."""
    try:
        os.utime(archive)
    except OSError:
        return archive.exists()  # exists but read-only to us: used all the same
    return True


def prune_stale(keep: Path, now: float | None = None) -> list[Path]:
    """Delete the archives beside ``keep`` (and copies a crash left half-published)
    that were last used :data:`STALE_AFTER_S` ago or more; never ``keep``.
    Returns what was deleted. Never raises: a file left is only disk space."""
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    deleted = []
    try:
        candidates = [*keep.parent.glob("classes-*.jsa"), *keep.parent.glob("classes-*.jsa.*.tmp")]
    except OSError:
        return []
    for path in candidates:
        try:
            if path.name != keep.name and path.stat().st_mtime < cutoff:
                path.unlink()
                deleted.append(path)
        except OSError:
            continue  # gone meanwhile (another start pruned it), or not ours to delete
    if deleted:
        log.info("deleted %d class archive(s) unused for %d days: %s", len(deleted),
                 STALE_AFTER_S // 86400, ", ".join(p.name for p in deleted))
    return deleted
