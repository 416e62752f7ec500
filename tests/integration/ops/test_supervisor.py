"""``--processes N``: a permanent error in the children stops the command with that
error; a transient one (Redis down) restarts them with a growing delay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from jobpipe.devstack import free_port
from tests.integration.ops.conftest import PasswordRedis

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 120


def start_stage(tmp_path: Path, redis_url: str, kafka_bootstrap: str, stderr: IO[str],
                command: tuple[str, ...] = ("bridge",)) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBPIPE_")},
           "PYTHONPATH": str(ROOT), "JOBPIPE_REDIS_URL": redis_url,
           "JOBPIPE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "JOBPIPE_NAMESPACE": f"sup{os.getpid()}"}
    return subprocess.Popen([sys.executable, "-m", "jobpipe", *command, "--processes", "2"],
                            stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=env,
                            cwd=tmp_path)


@pytest.mark.parametrize("command", [("bridge",),
                                     ("worker", "tests.integration.consumers.recording_app")])
def test_wrong_credentials_stop_every_process_with_one_error_line(
        password_redis: PasswordRedis, services, tmp_path: Path,
        command: tuple[str, ...]) -> None:
    url = f"redis://:not-the-password@127.0.0.1:{password_redis.port}/0"
    with (tmp_path / "stderr.txt").open("w") as err:
        proc = start_stage(tmp_path, url, services.kafka_bootstrap, err, command)
        try:
            code = proc.wait(DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert "starting it again" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("jobpipe: error: redis.url: Redis at redis://:***@"), stderr
    assert "refused the credentials" in last


def test_unreachable_redis_restarts_children_with_a_growing_delay(services,
                                                                 tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as err:
        proc = start_stage(tmp_path, url, services.kafka_bootstrap, err)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while "bridge-0 exited with 1; starting it again in 2 s" not in stderr_path.read_text():
                assert proc.poll() is None, stderr_path.read_text()
                assert time.monotonic() < deadline, stderr_path.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = stderr_path.read_text()
    assert "bridge-0 exited with 1; starting it again in 1 s" in stderr
    assert f"bridge-0 failed: Redis at {url} is unreachable" in stderr
    assert "Traceback" not in stderr
    assert code == 0, stderr
