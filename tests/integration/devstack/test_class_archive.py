"""The broker's class archive (jobpipe.devstack.class_archive) with the real JVM and jars.

Each test links the shared jars into a directory of its own, so its archive is
its own too and the shared one is never touched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jobpipe.devstack import DevStack, class_archive, free_port, free_port_block
from jobpipe.devstack.kafka_broker import jvm_options
from jobpipe.devstack.kafka_jars import linked_jars

pytestmark = pytest.mark.integration


def _cmdline(pid: int | None) -> str:
    assert pid is not None
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _write(written: Path, archive: Path, classpath: str) -> None:
    """What a node's JVM leaves as it exits: the archive, and the note beside it."""
    subprocess.run(["java", *class_archive.archive_options(archive, written), "-cp", classpath,
                    "-version"], check=True, capture_output=True)
    class_archive.note_writer(written, archive, "java", [], classpath)


def test_a_written_archive_is_shared_and_a_broken_or_extra_one_deleted(tmp_path):
    libs = linked_jars(tmp_path)
    classpath = f"{libs}/*"
    archive = class_archive.archive_path(libs, "java", [])
    written = tmp_path / "node" / class_archive.WRITTEN_NAME
    written.parent.mkdir()
    _write(written, archive, classpath)
    whole = written.read_bytes()
    assert whole  # the JVM wrote it as it exited

    for broken in (whole[:4096], bytes(4096) + whole[4096:]):  # cut short; header never written
        written.write_bytes(broken)
        class_archive.adopt(written)
        assert not written.exists()
        assert not archive.exists()

    _write(written, archive, classpath)
    class_archive.adopt(written)
    assert archive.exists()
    assert not written.exists()
    assert not written.with_name("classes.json").exists()
    assert class_archive.archive_options(archive, written) == [f"-XX:SharedArchiveFile={archive}"]
    first = archive.read_bytes()

    written.write_bytes(b"a second node's, written meanwhile")
    class_archive.note_writer(written, archive, "java", [], classpath)
    class_archive.adopt(written)
    assert not written.exists()
    assert archive.read_bytes() == first  # the first one stays

    # Other JVM options lay classes out otherwise: they get an archive of their own.
    assert class_archive.archive_path(libs, "java", ["-XX:+UseZGC"]) != archive


def test_an_archive_that_cannot_be_shared_is_deleted_without_an_error(tmp_path):
    libs = linked_jars(tmp_path)
    classpath = f"{libs}/*"
    written = tmp_path / "node" / class_archive.WRITTEN_NAME
    written.parent.mkdir()
    _write(written, tmp_path / "no such folder" / "classes-x.jsa", classpath)
    class_archive.adopt(written)  # the copy fails: logged, not raised
    assert not written.exists()


def test_a_node_started_without_an_archive_writes_one_the_next_start_maps(tmp_path):
    libs = linked_jars(tmp_path)
    archive = class_archive.archive_path(libs, "java", jvm_options(os.environ))
    stack = DevStack(tmp_path / "stack", redis_port=free_port(), kafka_port=free_port_block(2),
                     libs_dir=libs, kafka_heap="512m")
    node = stack.kafka.nodes[1]
    try:
        stack.start_kafka()
        assert "-XX:ArchiveClassesAtExit=" in _cmdline(node.process.pid)
        stack.stop_kafka()  # the JVM writes it as it exits; the stop shares it
        assert archive.exists()
        assert not node.written_archive.exists()
        stack.start_kafka()
        pid = node.process.pid
        assert f"-XX:SharedArchiveFile={archive}" in _cmdline(pid)
        assert str(archive) in Path(f"/proc/{pid}/maps").read_text()
    finally:
        stack.down(timeout_s=30)
