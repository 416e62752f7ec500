"""The README's quickstart, run as written against the real Redis and Kafka.

Files are written and commands run exactly as the README's marked blocks have
them (tests/readme_snippets.py), in a scratch directory, with the environment
``jobpipe dev up`` tells the reader to export pointing at the test's services
and its own namespace. Every job id a step prints must be run by the worker
before the next step starts. The argument ``ID`` of a command stands for the
first job id printed (the README says so); ``jobpipe job ID`` and ``jobpipe
stats --once`` are run again until they show what the README says they show
(the job succeeded; no backlog, no lag, nothing dead-lettered): the worker
writes the state record and commits its offsets a moment after the handler
printed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from tests.readme_snippets import quickstart_steps
from tests.services import ROOT, Services

pytestmark = pytest.mark.integration

DEADLINE_S = 180
CELL_BORDER = re.compile(r"[│┃|]")  # rich's borders: header, rows; ASCII without UTF-8
JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$", re.M)


def test_readme_quickstart_runs_as_written(services: Services, namespace: str, tmp_path: Path,
                                           redis_client, kafka_cleanup) -> None:
    steps = quickstart_steps(ROOT / "README.md")
    assert [s.kind for s in steps].count("serve") == 1, "one block starts bridge and worker"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBPIPE_")},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "JOBPIPE_REDIS_URL": services.redis_url,
           "JOBPIPE_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
           "JOBPIPE_NAMESPACE": namespace}
    served: list[tuple[subprocess.Popen[str], IO[str]]] = []
    log = tmp_path / "served.log"
    job_ids: list[str] = []
    checked = 0
    try:
        for step in steps:
            if step.kind == "file":
                assert step.name
                (tmp_path / step.name).write_text(step.text)
            elif step.kind == "serve":
                for line in step.lines():
                    out = log.open("a")
                    argv = shlex.split(line.removesuffix("&"), comments=True)
                    served.append((subprocess.Popen(argv, cwd=tmp_path, env=env, text=True,
                                                    stdout=out, stderr=subprocess.STDOUT),
                                   out))
            elif step.kind == "run":
                _wait_run(job_ids, log, served)
                for line in step.lines():
                    argv = [job_ids[0] if arg == "ID" else arg
                            for arg in shlex.split(line, comments=True)]
                    shown = _run_until_shown(argv, tmp_path, env)
                    job_ids += JOB_ID.findall(shown)
                    checked += argv[:2] in (["jobpipe", "job"], ["jobpipe", "stats"])
        assert len(job_ids) == 2, "enqueue.py and jobpipe enqueue each print an id"
        assert checked == 2, "the README looks the job up and shows the stats"
        _wait_run(job_ids, log, served)
    finally:
        for proc, _ in served:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, out in served:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.close()
    output = log.read_text()
    assert f"sent 'welcome' to ada@example.com (job {job_ids[0]})" in output
    assert f"sent 'hello' to bob@example.com (job {job_ids[1]})" in output


def _run_until_shown(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command of the README (it must succeed) until its output shows what the
    README promises, if it promises something; returns the last output."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        done = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True,
                              timeout=DEADLINE_S)
        assert done.returncode == 0, f"{argv}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        missing = _promised(argv, done.stdout)
        if missing is None:
            return done.stdout
        assert time.monotonic() < deadline, f"{shlex.join(argv)}: {missing}\n{done.stdout}"
        time.sleep(0.5)


def _promised(argv: list[str], out: str) -> str | None:
    """What ``out`` lacks of what the README says the command shows; ``None``: nothing."""
    if argv[:2] == ["jobpipe", "job"]:
        status = json.loads(out)
        if (status["id"], status["state"]) != (argv[2], "succeeded"):
            return f"job {argv[2]} not shown succeeded"
    if argv[:2] == ["jobpipe", "stats"]:
        row = _table_row(out, "email")
        if any(row[column] != "0" for column in ("ready", "lag", "DLQ")):
            return f"queue email not drained: {row}"
    return None


def _table_row(out: str, first: str) -> dict[str, str]:
    """The row of a ``jobpipe stats`` table whose first cell is ``first``, by column."""
    lines = [[c.strip() for c in CELL_BORDER.split(line)[1:-1]] for line in out.splitlines()
             if CELL_BORDER.match(line)]
    header = next(cells for cells in lines if cells and cells[0] == "queue")
    row = next(cells for cells in lines if cells and cells[0] == first)
    return dict(zip(header, row, strict=True))


def _wait_run(job_ids: list[str], log: Path,
              served: list[tuple[subprocess.Popen[str], IO[str]]]) -> None:
    """Until the worker printed a line for every job id seen so far."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        output = log.read_text() if log.exists() else ""
        if all(f"(job {job_id})" in output for job_id in job_ids):
            return
        assert all(proc.poll() is None for proc, _ in served), f"a process exited:\n{output}"
        assert time.monotonic() < deadline, f"jobs {job_ids} not run:\n{output}"
        time.sleep(0.2)
