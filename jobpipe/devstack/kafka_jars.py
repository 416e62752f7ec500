"""The Kafka broker's runtime classpath, fetched once from Maven Central.

The jars land in a cache keyed by the hash of the shipped ``pom.xml``
(``~/.cache/jobpipe/kafka-<hash>/libs``), shared by every stack on the machine;
changing the pom (a new Kafka version) fetches a new set. A file lock keeps two
processes from fetching at once, and the directory appears only when complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from jobpipe.devstack.tools import find_tool
from jobpipe.errors import StackError

log = logging.getLogger(__name__)

POM_PATH = Path(__file__).with_name("pom.xml")
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.11.0:copy-dependencies"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jobpipe"


def default_libs_dir(pom: Path = POM_PATH) -> Path:
    """``~/.cache/jobpipe/kafka-<first 12 hex of the pom's sha256>/libs``."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    return _cache_root() / f"kafka-{digest}" / "libs"


def has_kafka_jars(libs_dir: Path) -> bool:
    """Whether ``libs_dir`` holds a Kafka broker jar."""
    return libs_dir.is_dir() and any(libs_dir.glob("kafka_2.13-*.jar"))


def ensure_kafka_jars(libs_dir: Path | None = None, *, pom: Path = POM_PATH,
                      tool_path: str | None = None) -> Path:
    """Return a directory of the broker's jars, fetching them with Maven when absent.

    Args:
        libs_dir: where the jars are (or go); the shared cache when ``None``.
        pom: the pom listing the runtime dependencies.
        tool_path: ``PATH`` to find ``mvn`` on (``$PATH`` when ``None``).

    Raises:
        StackError: ``mvn`` is missing or the fetch failed (one line, with the
            log file to read).
    """
    target = libs_dir if libs_dir is not None else default_libs_dir(pom)
    if has_kafka_jars(target):
        return target
    mvn = find_tool("mvn", tool_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if has_kafka_jars(target):  # another process fetched them meanwhile
            return target
        staging = target.parent / f".libs-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        log_path = target.parent / "mvn.log"
        log.info("fetching the Kafka jars with Maven into %s (once)", target)
        with log_path.open("wb") as out:
            result = subprocess.run(
                [mvn, "-B", "-q", "-ntp", "-f", str(pom), _DEPENDENCY_PLUGIN,
                 "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0 or not has_kafka_jars(staging):
            shutil.rmtree(staging, ignore_errors=True)
            last = _last_error(log_path)
            raise StackError(f"mvn could not fetch the Kafka jars (exit {result.returncode}): "
                             f"{last}; full output in {log_path}")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _last_error(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln]
    return (errors or lines or ["no output"])[0][:300]


def linked_jars(into: Path) -> Path:
    """``into/libs``: links to the shared jars, a jar directory whose class archive
    (:mod:`jobpipe.devstack.class_archive`) is its own, for measuring and testing."""
    libs = into / "libs"
    libs.mkdir(parents=True)
    for jar in ensure_kafka_jars().iterdir():
        (libs / jar.name).symlink_to(jar)
    return libs


if __name__ == "__main__":  # scripts/bootstrap prefetches with `python -m`
    print(ensure_kafka_jars())
