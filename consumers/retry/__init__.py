"""What happens to a job that failed: the retry policy (``policy``), the retry
tiers' topics and due times (``tiers``), the sink that produces retries and
dead letters before the offset moves (``sink``), and the relay that brings a
retry back to its main topic when it is due (``relay``)."""
