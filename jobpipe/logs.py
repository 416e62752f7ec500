"""Logging setup for the CLI. Library code only calls ``logging.getLogger(__name__)``."""

from __future__ import annotations

import json
import logging.config
import sys
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TextIO


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    A plain StreamHandler keeps the stream it was built with; when a caller
    swaps stderr (click's CliRunner, pytest's capture) and closes it, every
    later record would fail with "I/O operation on closed file".
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


class RepeatFilter(logging.Filter):
    """Passes a record whose key was not seen in the last ``interval_s`` seconds.

    librdkafka logs one line per reconnect attempt (tens a second while a broker
    is down); one line per client, facility and broker per interval says as much.
    """

    def __init__(self, key: Callable[[logging.LogRecord], Hashable],
                 interval_s: float = 30.0) -> None:
        super().__init__()
        self._key = key
        self._interval_s = interval_s
        self._passed_at: dict[Hashable, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._key(record)
        last = self._passed_at.get(key)
        if last is not None and record.created - last < self._interval_s:
            return False
        self._passed_at[key] = record.created
        return True


def logging_config(verbose: bool) -> dict[str, Any]:
    """The default ``dictConfig``: one line per record on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "line": {
                "format": "%(asctime)s %(levelname)-7s %(name)s [%(process)d] %(message)s",
            }
        },
        "handlers": {
            "stderr": {"()": CurrentStderrHandler, "formatter": "line"}
        },
        "loggers": {
            "jobpipe": {"level": "DEBUG" if verbose else "INFO"},
            "ingest": {"level": "DEBUG" if verbose else "INFO"},
            "bridge": {"level": "DEBUG" if verbose else "INFO"},
            "consumers": {"level": "DEBUG" if verbose else "INFO"},
            "loadtest": {"level": "DEBUG" if verbose else "INFO"},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def setup_logging(verbose: bool = False, log_config: Path | None = None) -> None:
    """Apply the default config, or a JSON ``dictConfig`` file given by ``--log-config``."""
    if log_config is not None:
        logging.config.dictConfig(json.loads(log_config.read_text()))
    else:
        logging.config.dictConfig(logging_config(verbose))
