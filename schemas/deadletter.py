"""The dead-letter record format shared by every producer and the stream workers.

A dead-lettered Kafka message keeps the ORIGINAL bytes as its value (never re-encoded) and says
why in headers, so an operator can fix and re-produce it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

REASON = "x-shinrai-reason"
SOURCE = "x-shinrai-source"
ORIGIN = "x-shinrai-origin"
REJECTED_AT = "x-shinrai-rejected-at"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected record: the original bytes and why it was rejected."""

    raw: bytes
    reason: str  # names the field and the reason
    source: str  # which stage rejected it: "produce:mbox", "gateway:zoom", "worker", ...
    origin: str = ""  # where in the input: file and line, partition and offset, request id
    key: bytes | None = None

    def headers(self, now: datetime | None = None) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the reason (values truncated to stay well under limits)."""
        at = (now or datetime.now(UTC)).isoformat()
        return [
            (REASON, self.reason.encode()[:4096]),
            (SOURCE, self.source.encode()[:256]),
            (ORIGIN, self.origin.encode()[:1024]),
            (REJECTED_AT, at.encode()),
        ]
