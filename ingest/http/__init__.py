"""HTTP intake for producers in other languages (``jobpipe ingest-server``)."""

from ingest.http.app import create_app, run_server

__all__ = ["create_app", "run_server"]
