"""Which DLQ records were already replayed, per partition, so a replay is never repeated.

Stored in Kafka itself, as the committed offset of group
``names.group_id(ns, "dlq-replay")`` on each DLQ partition: the offset is the
*watermark* (every record below it was replayed), and the commit's metadata
string lists the replayed offsets above it as ranges (``"12-15,20"``), because
``--task``/``--since``/``--limit`` replay records out of order and the ones
skipped must stay replayable. Nothing is deleted: ``ls`` and ``show`` still see
replayed records (marked as such) until ``purge``.

Pure: no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Kafka's offset.metadata.max.bytes defaults to 4096.
MAX_METADATA_CHARS = 3500


@dataclass(slots=True)
class ReplayProgress:
    """Replay progress of one DLQ partition.

    Attributes:
        watermark: every record below this offset was replayed (or purged).
        done: replayed offsets at or above the watermark.
    """

    watermark: int = 0
    done: set[int] = field(default_factory=set)

    def is_done(self, offset: int) -> bool:
        """Whether the record at ``offset`` was already replayed."""
        return offset < self.watermark or offset in self.done

    def mark(self, offset: int) -> None:
        """Record ``offset`` as replayed, moving the watermark over a done prefix."""
        if offset >= self.watermark:
            self.done.add(offset)
        while self.watermark in self.done:
            self.done.remove(self.watermark)
            self.watermark += 1

    def floor(self, low_watermark: int) -> None:
        """Forget records below the partition's first record (purged ones)."""
        if low_watermark > self.watermark:
            self.watermark = low_watermark
            self.done = {o for o in self.done if o >= low_watermark}
            self.mark(low_watermark - 1)  # re-run the prefix walk

    def encode(self) -> str:
        """The ``done`` set as ranges: ``"12-15,20"``."""
        parts: list[str] = []
        ordered = sorted(self.done)
        i = 0
        while i < len(ordered):
            j = i
            while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
                j += 1
            parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
            i = j + 1
        return ",".join(parts)

    def fits(self) -> bool:
        """Whether the encoding fits in a Kafka commit's metadata."""
        return len(self.encode()) <= MAX_METADATA_CHARS

    @classmethod
    def decode(cls, watermark: int, metadata: str | None) -> ReplayProgress:
        """Rebuild progress from a committed offset and its metadata. Unreadable
        metadata counts as nothing done above the watermark."""
        done: set[int] = set()
        for part in (metadata or "").split(","):
            first, _, last = part.strip().partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                continue
            done.update(range(int(first), int(last or first) + 1))
        progress = cls(max(0, watermark), {o for o in done if o >= watermark})
        progress.mark(-1)
        return progress
