"""Who may reach the intake: no tokens means loopback only, unless told otherwise.

The rule is :func:`jobpipe.http_access.check_exposure`, shared with the dashboard.
"""

from __future__ import annotations

from jobpipe.http_access import check_exposure as _check
from jobpipe.settings import IngestSettings


def check_exposure(ingest: IngestSettings, insecure: bool) -> None:
    """Refuse to serve the intake without tokens beyond loopback, unless ``insecure``.

    Raises:
        ConfigError: a non-loopback ``http_host``, no tokens, no ``insecure``.
    """
    _check(ingest.http_host, ingest.tokens, insecure, host_setting="ingest.http_host",
           server="ingest server", anyone_could="enqueue jobs")
