"""Reading the facts and accepted topics as the single records they stand for.

The processor writes its output for inputs that came in batch records as batch records
(``schemas.batches``: a ``fact_batch`` on the facts topic, an ``event_batch`` on the accepted
topic). A test that reads those topics record by record expands each batch record into its
items, each standing in for the single record it replaces (same key, partition and offset as
the batch record that holds it), so the test reads the same either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from schemas.batches import split

__all__ = ["expand", "expand_pairs", "items"]

R = TypeVar("R")


def items(value: bytes | None) -> list[bytes | None]:
    """The values ``value`` stands for: a batch record's items, else ``[value]`` itself."""
    found = split(value)
    if found is None:
        return [value]
    return list(found[1])


def expand(
    records: Iterable[R], with_value: Callable[[R, bytes | None], R] | None = None
) -> list[R]:
    """``records`` (each with a ``value``), a batch record replaced by one copy per item.

    ``with_value(record, item)`` builds the copy (default: ``dataclasses.replace`` for a
    dataclass, ``_replace`` for a named tuple)."""
    out: list[R] = []
    for record in records:
        value: bytes | None = record.value  # type: ignore[attr-defined]
        found = items(value)
        if len(found) == 1 and found[0] is value:
            out.append(record)
            continue
        copy = with_value or _copy_with_value
        out.extend(copy(record, item) for item in found)
    return out


def expand_pairs(
    pairs: Iterable[tuple[bytes | None, bytes | None]],
) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) pairs, a batch record's pair replaced by one (key, item) per item."""
    return [(key, item) for key, value in pairs for item in items(value)]


def _copy_with_value(record: Any, value: bytes | None) -> Any:
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.replace(record, value=value)
    return record._replace(value=value)
