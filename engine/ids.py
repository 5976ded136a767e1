"""Stable identifiers: the same log always yields the same obligation, fact and alert ids.

Ids are truncated SHA-256 digests of ``|``-joined parts, so they depend only on what the engine
saw (client, thread, event ids, instants), never on processing order, wall clock or process.
"""

from __future__ import annotations

import hashlib

_sha256 = hashlib.sha256

__all__ = ["digest", "fact_id", "obligation_id"]


def digest(*parts: str) -> str:
    """32 hex characters of SHA-256 over ``parts`` joined by ``|``."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def obligation_id(client_id: str, thread: str, opening_event_id: str) -> str:
    """Id of the obligation opened in ``thread`` of ``client_id`` by ``opening_event_id``."""
    # = digest("obligation", client_id, thread, opening_event_id), without the join
    return _sha256(f"obligation|{client_id}|{thread}|{opening_event_id}".encode()).hexdigest()[:32]


def fact_id(subject: str, kind: str, detail: str = "") -> str:
    """Id of the fact of ``kind`` about ``subject`` (an obligation, event or client)."""
    return _sha256(f"{subject}|{kind}|{detail}".encode()).hexdigest()[:32]  # = digest(...)
