"""Reading an mbox file as a stream of records, and cutting it into chunks read independently.

The records are exactly those of the stdlib's ``mailbox.mbox`` (its table of contents): a record
starts at every line beginning with ``From `` and ends before the next one, without the single
empty line that separates them; bytes before the first ``From `` line belong to no record. The
stdlib builds that table for the whole file and then reads each record again; here one pass reads
each chunk once and holds one chunk at a time, so memory does not grow with the file.

A record's end depends only on the line just before the next ``From `` line, so a file cut at
``From `` lines (:func:`chunk_bounds`) reads, chunk by chunk, into the same records in the same
order: chunks can be read by separate processes and their records concatenated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

_FROM = b"From "
_FROM_LINE = re.compile(rb"\nFrom ")  # lines end at \n only, as for the stdlib's readline
_EMPTY_LAST = b"\n\n"  # a record whose last line is empty (the stdlib's os.linesep is \n here)


def mbox_records(path: Path, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Every record (with its From_ line) of ``path`` between byte offsets ``start`` and ``end``.

    ``start`` and ``end`` must be 0, the end of the file, or the start of a ``From `` line (as
    :func:`chunk_bounds` gives them); the range is read at once, so keep it to a chunk. Raises
    ``OSError`` when the file cannot be read.
    """
    with path.open("rb") as file:
        file.seek(start)
        data = file.read() if end is None else file.read(end - start)
    starts = [match.start() + 1 for match in _FROM_LINE.finditer(data)]
    if data.startswith(_FROM):
        starts.insert(0, 0)
    for begin, stop in pairwise([*starts, len(data)]):
        record = data[begin:stop]
        # The stdlib stops a record one line-separator early when the line before the next
        # From_ line (or the end of the file) is empty: that line separates, it is no content.
        yield record[:-1] if record.endswith(_EMPTY_LAST) else record


def chunk_bounds(path: Path, chunk_bytes: int) -> list[tuple[int, int]]:
    """``(start, end)`` byte ranges of about ``chunk_bytes`` covering ``path``, cut at From_ lines.

    Only the lines around each cut are read. Raises ``OSError`` when the file cannot be read.
    """
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as file:
        target = chunk_bytes
        while target < size:
            file.seek(target - 1)
            file.readline()  # to the start of the next line (a line starting at target included)
            while True:
                position = file.tell()
                line = file.readline()
                if not line:
                    position = size
                    break
                if line.startswith(_FROM):
                    break
            if position >= size:
                break
            if position > cuts[-1]:
                cuts.append(position)
            target = max(position, target) + chunk_bytes
    cuts.append(size)
    return list(pairwise(cuts))
