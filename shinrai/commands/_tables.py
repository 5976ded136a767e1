"""Rows for people and for programs: an aligned text table, JSON, JSON lines or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

FORMATS = ("table", "json", "jsonl", "csv")
MAX_CELL = 60


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """``rows`` (values in ``columns`` order) in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return orjson.dumps(
            [dict(zip(columns, row, strict=True)) for row in rows],
            default=str,
            option=orjson.OPT_INDENT_2,
        ).decode()
    if fmt == "jsonl":
        return "\n".join(
            orjson.dumps(dict(zip(columns, row, strict=True)), default=str).decode() for row in rows
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                ["" if v is None else v if isinstance(v, str) else _cell(v) for v in row]
            )
        return out.getvalue().rstrip("\n")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(name), *(len(r[i]) for r in cells)]) for i, name in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out_lines = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out_lines += [line(r) for r in cells]
    return "\n".join(out_lines)
