"""The dead-letter record format shared by every producer and the stream workers.

A dead-lettered Kafka message keeps the ORIGINAL bytes as its value (never re-encoded) and says
why in headers, so an operator can fix and re-produce it unchanged.

Size: a dead letter never exceeds :data:`MAX_RECORD_BYTES` (the producers' 1,000,000-byte request
limit), whatever the size of the rejected input: re-producing an oversized original plus headers
would fail at the producer and fail the batch it belongs to. Past the limit the value holds the
first bytes of the original, and headers say so: ``x-shinrai-truncated`` (the original size) and
``x-shinrai-sha256`` (the original's digest, to find and check the full copy at its origin).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

REASON = "x-shinrai-reason"
SOURCE = "x-shinrai-source"
ORIGIN = "x-shinrai-origin"
REJECTED_AT = "x-shinrai-rejected-at"
TRUNCATED = "x-shinrai-truncated"
SHA256 = "x-shinrai-sha256"
ITEM = "x-shinrai-item"
"""The index of the rejected item in the batch record its origin names (absent: a single record)."""

MAX_RECORD_BYTES = 1_000_000
"""The largest dead-letter record (key + value + headers) we produce: the producers' limit."""
_RECORD_OVERHEAD = 512  # Kafka's per-record framing and header-length varints, with room to spare


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected record: the original bytes and why it was rejected."""

    raw: bytes
    reason: str  # names the field and the reason
    source: str  # which stage rejected it: "produce:mbox", "gateway:zoom", "worker", ...
    origin: str = ""  # where in the input: file and line, partition and offset, request id
    key: bytes | None = None
    item: int | None = None  # the item's index in the batch record ``origin`` names, if one

    def headers(self, now: datetime | None = None) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the reason (values truncated to stay well under limits)."""
        at = (now or datetime.now(UTC)).isoformat()
        headers = [
            (REASON, self.reason.encode()[:4096]),
            (SOURCE, self.source.encode()[:256]),
            (ORIGIN, self.origin.encode()[:1024]),
            (REJECTED_AT, at.encode()),
        ]
        if self.item is not None:  # one item of a batch record: the origin names the record
            headers.append((ITEM, str(self.item).encode()))
        return headers

    def record(
        self, now: datetime | None = None, *, max_bytes: int = MAX_RECORD_BYTES
    ) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        """``(key, value, headers)`` to produce, never larger than ``max_bytes`` in all.

        The value is the original bytes, or, when they do not fit, their first bytes with the
        original size and SHA-256 in headers (the key is cut too if it alone is too large).
        """
        headers = self.headers(now)
        key = self.key
        fixed = _RECORD_OVERHEAD + sum(len(k) + len(v) for k, v in headers)
        if key is not None and len(key) > max_bytes // 4:
            key = key[: max_bytes // 4]
        budget = max_bytes - fixed - len(key or b"") - len(TRUNCATED) - len(SHA256) - 96
        raw = self.raw
        if len(raw) + fixed + len(key or b"") <= max_bytes:
            return key, raw, headers
        headers += [
            (TRUNCATED, str(len(raw)).encode()),
            (SHA256, hashlib.sha256(raw).hexdigest().encode()),
        ]
        return key, raw[: max(budget, 0)], headers
