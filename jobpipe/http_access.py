"""Who may use an HTTP server of jobpipe: bearer tokens, and loopback-only without them.

The intake (``jobpipe ingest-server``) and the dashboard (``jobpipe dashboard``)
accept the same tokens, ``ingest.tokens``, checked here. Without tokens anyone
who reaches the port may act, so such a server listens on a non-loopback
address only when told ``--insecure`` (and then says so at start).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Sequence

from jobpipe.errors import ConfigError

log = logging.getLogger(__name__)


def bearer_authorised(header: str, tokens: Sequence[bytes]) -> bool:
    """Whether an ``Authorization`` header value carries one of ``tokens``; any
    header passes when there are no tokens."""
    if not tokens:
        return True
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    offered = given.strip().encode()
    # Compare against every token, so timing says nothing about which matched.
    return sum(hmac.compare_digest(offered, t) for t in tokens) > 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another name may resolve anywhere


def check_exposure(host: str, tokens: Sequence[str], insecure: bool, *, host_setting: str,
                   server: str, anyone_could: str) -> None:
    """Refuse to serve without tokens beyond loopback, unless ``insecure``.

    Args:
        host_setting: how the user sets ``host`` (named in the error).
        server: the server's name, for the warning.
        anyone_could: what an unauthenticated visitor could do ("enqueue jobs").

    Raises:
        ConfigError: a non-loopback ``host``, no tokens, no ``insecure``.
    """
    if tokens or is_loopback(host):
        return
    if not insecure:
        raise ConfigError(f"{host_setting}: refusing to listen on {host!r} without "
                          f"ingest.tokens (anyone who reaches it could {anyone_could}); "
                          "set ingest.tokens (JOBPIPE_INGEST_TOKENS='[\"TOKEN\"]'), listen on "
                          "127.0.0.1, or pass --insecure")
    log.warning("%s on %s runs WITHOUT authentication (--insecure): anyone who reaches the "
                "port can %s", server, host, anyone_could)
