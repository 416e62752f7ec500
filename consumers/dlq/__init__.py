"""The dead-letter queue's tools: its record format and headers (``record``),
which records were replayed (``progress``), and listing, showing, replaying
and purging them (``tools``, behind ``jobpipe dlq``)."""
