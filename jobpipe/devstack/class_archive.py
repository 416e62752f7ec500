"""A class-data archive of the broker's classes (AppCDS), so a Kafka JVM starts sooner.

A JVM given ``-XX:SharedArchiveFile`` maps the classes it needs from one file
instead of reading and verifying them from 46 jars: about 2 s less to a
ready node on the build box (``scripts/time_kafka_restart.py --fresh-archive``
times starts without and with one).

Java 17 writes such an archive when a JVM started with
``-XX:ArchiveClassesAtExit`` exits by itself; a stopped node (SIGTERM) does,
taking about 4 s longer to stop. So a node started while there is no archive
writes one into its own directory, and :func:`adopt` moves it to the shared
cache once that JVM is gone, if Java can map it: a JVM killed while writing
leaves a file it cannot (and a truncated archive crashes every JVM that maps
it), which is deleted. The archive sits next to the jars
it was made from, and its name holds the Java binary it was made by; a JVM
that still cannot use it says so in its log and starts without it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

WRITTEN_NAME = "classes.jsa"  # in a node's directory, written as its JVM exits


def archive_path(libs_dir: Path, java: str) -> Path:
    """The shared archive for the jars in ``libs_dir`` and the binary ``java``."""
    binary = Path(os.path.realpath(shutil.which(java) or java))
    try:
        stamp = f"{binary}:{binary.stat().st_mtime_ns}"
    except OSError:
        stamp = str(binary)
    return libs_dir.parent / f"classes-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}.jsa"


def jvm_options(archive: Path, written: Path | None) -> list[str]:
    """Read ``archive`` when there is one; else write one to ``written`` at exit
    (``None``: a short-lived tool, whose classes are not the broker's)."""
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}"]
    if written is None:
        return []
    # Writing it logs a warning per class it leaves out (hundreds): not news.
    return [f"-XX:ArchiveClassesAtExit={written}", "-Xlog:cds=off"]


def adopt(written: Path, archive: Path, java: str, classpath: str) -> None:
    """Make ``written`` (left by a JVM that is gone) the shared ``archive``, if Java
    maps it; otherwise, or when there already is an archive, delete it."""
    if not written.exists():
        return
    if not archive.exists():
        # A truncated archive crashes the JVM that maps it, even without -Xshare:on.
        check = subprocess.run([java, f"-XX:SharedArchiveFile={written}", "-Xshare:on",
                                "-XX:ErrorFile=/dev/null", "-XX:-CreateCoredumpOnCrash",
                                "-cp", classpath, "-version"],
                               stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if check.returncode == 0:
            # Copied next to the archive first: the node's directory may be on another
            # file system, and a rename there is atomic (a start sees all or nothing).
            staged = archive.with_name(f"{archive.name}.{os.getpid()}.tmp")
            shutil.copyfile(written, staged)
            os.replace(staged, archive)
    written.unlink(missing_ok=True)
