"""Fallback worker entry: ``python -m loadtest.worker_main QUEUES``.

Used only while ``jobpipe worker`` is not available in this checkout; it runs
the same :class:`consumers.Worker` with :data:`loadtest.tasks.app` that the
CLI would.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> int:
    """Run a worker over the comma-separated queues in ``argv[0]`` until SIGTERM."""
    from consumers import Worker
    from jobpipe.settings import load_settings
    from loadtest.tasks import app

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(message)s")
    queues = [q for q in argv[0].split(",") if q] if argv else None
    Worker(load_settings(), app, queues).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
