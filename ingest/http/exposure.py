"""Who may reach the intake: no tokens means loopback only, unless told otherwise.

Without ``ingest.tokens`` anyone who reaches the port can enqueue jobs, so the
server listens on a non-loopback address only with tokens, or with an explicit
``--insecure`` (and then says so at start).
"""

from __future__ import annotations

import ipaddress
import logging

from jobpipe.errors import ConfigError
from jobpipe.settings import IngestSettings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another name may resolve anywhere


def check_exposure(ingest: IngestSettings, insecure: bool) -> None:
    """Refuse to serve without tokens beyond loopback, unless ``insecure``.

    Raises:
        ConfigError: a non-loopback ``http_host``, no tokens, no ``insecure``.
    """
    if ingest.tokens or is_loopback(ingest.http_host):
        return
    if not insecure:
        raise ConfigError(f"ingest.http_host: refusing to listen on {ingest.http_host!r} "
                          "without ingest.tokens (anyone who reaches it could enqueue jobs); "
                          "set ingest.tokens (JOBPIPE_INGEST_TOKENS='[\"TOKEN\"]'), listen on "
                          "127.0.0.1, or pass --insecure")
    log.warning("ingest server on %s accepts jobs WITHOUT authentication (--insecure): anyone "
                "who reaches the port can enqueue jobs", ingest.http_host)
