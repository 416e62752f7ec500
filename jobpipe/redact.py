"""Secrets out of what is shown: the one helper for every URL printed, logged or
used as a metric label (it imports nothing of jobpipe, so settings can use it)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``.

    The one helper for every URL that is printed, logged or used as a metric
    label. redis-py reads a password from the userinfo and from a
    ``?password=`` query argument, so both are hidden.
    """
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    if query:
        query = "&".join("password=***" if arg.split("=", 1)[0].lower() == "password" else arg
                         for arg in query.split("&"))
    return urlunsplit(parts._replace(netloc=netloc, query=query))
