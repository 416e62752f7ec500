"""The worker's commands: ``jobpipe worker``, ``pause``/``resume`` and ``dlq``.

The ``jobpipe`` entry point names them by string and imports them on first use.
"""
