"""The CLI's logging writes to the current stderr, even after it was swapped and closed."""

from __future__ import annotations

import io
import logging
import sys

from jobpipe.logs import setup_logging


def test_log_records_follow_a_swapped_stderr(monkeypatch):
    setup_logging(verbose=False)
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    logging.getLogger("jobpipe.test").info("into the swapped stream")
    assert "into the swapped stream" in swapped.getvalue()
    swapped.close()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    logging.getLogger("jobpipe.test").info("no error after the old stream closed")
    assert "no error" in sys.stderr.getvalue()
