"""Request bodies of ``POST /v1/queues/{queue}/jobs``, checked field by field (pure).

A body is one job object or ``{"jobs": [job, ...]}``. Every problem is
reported with the path of its field (``jobs[3].priority``), all at once, so a
client fixes its request in one go.
"""

from __future__ import annotations

from typing import Any

from ingest.intake import JobRequest
from jobpipe.options import OPTION_NAMES, JobOptions

MAX_JOBS_PER_REQUEST = 10_000

_FIELDS = {"task", "args", *OPTION_NAMES}


class FieldErrors(Exception):
    """The body is malformed; ``errors`` holds ``{"field", "message"}`` items."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def parse_body(body: Any) -> list[JobRequest]:
    """Turn a decoded JSON body into job requests.

    Raises:
        FieldErrors: naming each bad field.
    """
    if isinstance(body, dict) and "jobs" in body:
        extra = sorted(set(body) - {"jobs"})
        if extra:
            raise FieldErrors([{"field": name, "message": "unknown field beside 'jobs'"}
                               for name in extra])
        jobs = body["jobs"]
        if not isinstance(jobs, list) or not jobs:
            raise FieldErrors([{"field": "jobs", "message": "must be a non-empty array"}])
        if len(jobs) > MAX_JOBS_PER_REQUEST:
            raise FieldErrors([{"field": "jobs", "message":
                                f"at most {MAX_JOBS_PER_REQUEST} jobs per request"}])
        prefixes = [f"jobs[{i}]." for i in range(len(jobs))]
    elif isinstance(body, dict):
        jobs, prefixes = [body], [""]
    else:
        raise FieldErrors([{"field": "", "message": "body must be a JSON object"}])
    errors: list[dict[str, str]] = []
    requests = []
    for job, prefix in zip(jobs, prefixes, strict=True):
        request = _parse_job(job, prefix, errors)
        if request is not None:
            requests.append(request)
    if errors:
        raise FieldErrors(errors)
    return requests


def _parse_job(job: Any, prefix: str, errors: list[dict[str, str]]) -> JobRequest | None:
    if not isinstance(job, dict):
        errors.append({"field": prefix.rstrip(".") or "", "message": "must be an object"})
        return None
    before = len(errors)
    for name in sorted(set(job) - _FIELDS):
        errors.append({"field": prefix + name, "message": "unknown field"})
    task = job.get("task")
    if not isinstance(task, str) or not task:
        errors.append({"field": prefix + "task", "message": "required, a non-empty string"})
    options = JobOptions(**{name: job.get(name) for name in OPTION_NAMES})
    for name, must in options.wrong_types():  # the producers' type rules, field by field
        errors.append({"field": prefix + name, "message": must})
    if len(errors) > before:
        return None
    return JobRequest(str(task), job.get("args"), options)
