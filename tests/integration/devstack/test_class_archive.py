"""The broker's class archive (jobpipe.devstack.class_archive) with the real JVM and jars.

Each test links the shared jars into a directory of its own, so its archive is
its own too and the shared one is never touched.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobpipe.devstack import DevStack, class_archive, free_port, free_port_block
from jobpipe.devstack.kafka_jars import linked_jars

pytestmark = pytest.mark.integration


def _cmdline(pid: int | None) -> str:
    assert pid is not None
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_a_written_archive_is_shared_and_a_truncated_or_extra_one_deleted(tmp_path):
    libs = linked_jars(tmp_path)
    classpath = f"{libs}/*"
    archive = class_archive.archive_path(libs, "java")
    written = tmp_path / "node" / class_archive.WRITTEN_NAME
    written.parent.mkdir()
    subprocess.run(["java", *class_archive.jvm_options(archive, written), "-cp", classpath,
                    "-version"], check=True, capture_output=True)
    assert written.stat().st_size > 0  # the JVM wrote it as it exited

    truncated = tmp_path / "truncated.jsa"
    truncated.write_bytes(written.read_bytes()[:4096])  # as a JVM killed while writing
    class_archive.adopt(truncated, archive, "java", classpath)
    assert not truncated.exists()
    assert not archive.exists()

    class_archive.adopt(written, archive, "java", classpath)
    assert archive.exists()
    assert not written.exists()
    assert class_archive.jvm_options(archive, written) == [f"-XX:SharedArchiveFile={archive}"]
    first = archive.read_bytes()

    written.write_bytes(b"a second node's, written meanwhile")
    class_archive.adopt(written, archive, "java", classpath)
    assert not written.exists()
    assert archive.read_bytes() == first  # the first one stays


def test_a_node_started_without_an_archive_writes_one_the_next_start_reads(tmp_path):
    libs = linked_jars(tmp_path)
    archive = class_archive.archive_path(libs, "java")
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
        assert f"-XX:SharedArchiveFile={archive}" in _cmdline(node.process.pid)
    finally:
        stack.down(timeout_s=30)
