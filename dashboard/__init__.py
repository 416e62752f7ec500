"""The web dashboard: every queue at a glance, and the operator's buttons.

Served by ``jobpipe dashboard`` under ``/ui/``: static HTML, JS and CSS shipped
in this package (no build step, nothing fetched from elsewhere) and JSON
endpoints. It reads what ``jobpipe stats`` reads and acts through the same code
as ``jobpipe pause``/``resume`` and ``jobpipe dlq``, so it may import ``jobpipe``
and ``consumers`` and nothing else.
"""
