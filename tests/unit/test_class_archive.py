"""Stale class archives are deleted, the ones in use are kept (jobpipe.devstack.class_archive).

Only files and their times: the JVM side is in tests/integration/devstack/test_class_archive.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobpipe.devstack import class_archive

DAY_S = 24 * 3600.0


def _archive(folder: Path, name: str, age_days: float) -> Path:
    path = folder / name
    path.write_bytes(b"archive")
    then = time.time() - age_days * DAY_S
    os.utime(path, (then, then))
    return path


def test_a_start_deletes_archives_unused_for_30_days_and_keeps_the_rest(tmp_path):
    current = _archive(tmp_path, "classes-current.jsa", 90)  # old, but mapped by this start
    stale = _archive(tmp_path, "classes-oldjava.jsa", 31)
    recent = _archive(tmp_path, "classes-zgc.jsa", 29)  # another collector, used this month
    half_published = _archive(tmp_path, "classes-x.jsa.4242.tmp", 31)
    unrelated = _archive(tmp_path, "mvn.log", 400)

    options = class_archive.archive_options(current, tmp_path / "node" / "classes.jsa")

    assert options == [f"-XX:SharedArchiveFile={current}"]
    assert time.time() - current.stat().st_mtime < DAY_S  # marked as used now
    assert not stale.exists()
    assert not half_published.exists()
    assert recent.exists()
    assert unrelated.exists()


def test_a_start_without_an_archive_still_prunes_and_writes_one(tmp_path):
    stale = _archive(tmp_path, "classes-oldjava.jsa", 45)
    missing = tmp_path / "classes-new.jsa"
    written = tmp_path / "node" / "classes.jsa"

    options = class_archive.archive_options(missing, written)

    assert options[0] == f"-XX:ArchiveClassesAtExit={written}"
    assert not missing.exists()
    assert not stale.exists()


def test_pruning_at_an_explicit_time_reports_what_it_deleted(tmp_path):
    keep = _archive(tmp_path, "classes-keep.jsa", 100)
    old = _archive(tmp_path, "classes-old.jsa", 10)

    assert class_archive.prune_stale(keep, now=time.time() + 25 * DAY_S) == [old]
    assert keep.exists()
    assert class_archive.prune_stale(keep) == []
