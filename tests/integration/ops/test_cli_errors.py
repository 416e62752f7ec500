"""Commands whose Redis or Kafka is unreachable, or whose settings are wrong, print one
line naming the address and the failure, and exit non-zero: never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobpipe.devstack import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``jobpipe ARGS`` in a fresh interpreter, with only the given JOBPIPE_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBPIPE_")}
    return subprocess.run([sys.executable, "-m", "jobpipe", *args], capture_output=True,
                          text=True, env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
                          cwd=cwd, timeout=180)


def the_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``jobpipe: error:`` line of a failed command (no traceback around it)."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("jobpipe: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("command", [["check"], ["stats", "--once"], ["pause", "default"],
                                     ["resume", "default"], ["bridge"],
                                     ["enqueue", "default", "t"]])
def test_unreachable_redis_is_one_line_naming_the_address(command: list[str],
                                                          tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_cli(*command, cwd=tmp_path, env={"JOBPIPE_REDIS_URL": url,
                                                  "JOBPIPE_INGEST_DEADLINE_S": "0.5"})
    line = the_error_line(result)
    assert f"Redis at {url}" in line
    assert "Connection refused" in line
    if command[0] != "enqueue":  # the producer also warns once that Redis is not up yet
        assert result.stderr.strip() == line


@pytest.mark.parametrize("command", [["check"], ["dlq", "ls", "default"]])
def test_unreachable_kafka_is_one_line_naming_the_address(command: list[str], services,
                                                          tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = run_cli(*command, cwd=tmp_path, env={"JOBPIPE_REDIS_URL": services.redis_url,
                                                  "JOBPIPE_KAFKA_BOOTSTRAP": bootstrap})
    line = the_error_line(result)
    assert f"Kafka at {bootstrap}" in line
    assert "Connection refused" in line  # at once: not after the metadata timeout
    # librdkafka's own connect failures are rate-limited log records, not a flood
    assert len(result.stderr.splitlines()) <= 2, result.stderr


def test_a_directory_as_the_settings_file_is_one_line(tmp_path: Path) -> None:
    line = the_error_line(run_cli("-c", str(tmp_path), "check", cwd=tmp_path))
    assert line == f"jobpipe: error: {tmp_path}: is a directory, not a settings file"


def test_a_misspelt_environment_variable_stops_the_command(tmp_path: Path) -> None:
    result = run_cli("check", cwd=tmp_path, env={"JOBPIPE_REDIS_ULR": "redis://x:1/0"})
    assert "JOBPIPE_REDIS_ULR: unknown key 'ulr'" in the_error_line(result)


def test_a_non_text_namespace_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jobpipe.toml").write_text("namespace = 5\n")
    result = run_cli("check", cwd=tmp_path)
    assert "namespace: expected str, got int" in the_error_line(result)


def test_the_intake_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    result = run_cli("ingest-server", "--host", "0.0.0.0", "--port", str(free_port()),
                     cwd=tmp_path)
    line = the_error_line(result)
    assert "refusing to listen on '0.0.0.0' without ingest.tokens" in line
    assert "--insecure" in line
