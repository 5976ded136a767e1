"""The ClickHouse sink: buffer facts, interactions and delivery records; flush them idempotently.

Lifecycle: ``ClickHouseSink(settings)`` (no I/O) → ``setup()`` (connect, migrate or check, read
replay high-water marks) → ``add_*()`` (buffer, with the record's Kafka position) →
``flush()`` when ``should_flush()`` → ``close()``. Commit Kafka offsets only after ``flush()``
returned.

Exactly-once in effect, rollups included, rests on two mechanisms:

* **Same batch re-sent** (a retry after a timeout, or a flush repeated by the caller): each
  table's batch is ONE Arrow insert whose ``insert_deduplication_token`` is derived from the
  (topic, partition, first..last offset) ranges it holds; ClickHouse drops the duplicate block
  in the base table and, with ``deduplicate_blocks_in_dependent_materialized_views``, in every
  rollup fed by a materialized view.
* **Replay after a crash** (offsets not committed, the consumer re-reads them, batch boundaries
  may differ): base tables are unpartitioned, so a flush is one part and lands entirely or not
  at all; ``setup()`` reads ``max(offset)`` per (table, topic, partition) and ``add_*()`` drops
  records at or below it. ``sla_facts`` is written last, so its high-water mark is never ahead
  of the obligations derived from the same facts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from schemas.batches import (
    EVENT_BATCH,
    FACT_BATCH,
    MAX_BATCH_ITEMS,
    BatchInvalid,
    looks_like_batch,
    split,
)
from schemas.deadletter import DeadLetter
from schemas.directory import Client
from schemas.events import InteractionEvent
from schemas.facts import Fact, FactKind
from shinrai.errors import SinkBackpressure, SinkError, SinkUnavailable
from shinrai.logging import get_logger
from shinrai.settings import ClickHouseSettings
from sinks.clickhouse import json_batches, records, rows
from sinks.clickhouse import obligations as obl
from sinks.clickhouse.client import check_identifier, connect, is_transient, parse_url, translate
from sinks.clickhouse.records import Row
from sinks.clickhouse.rows import DeliveryRecord, Position, RollupKey

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client as ChClient

log = get_logger("sinks.clickhouse")

FACTS = "sla_facts"
INTERACTIONS = "interactions"
DELIVERIES = "alert_deliveries"
OBLIGATIONS = "obligations"
_POSITIONED = (FACTS, INTERACTIONS, DELIVERIES)
_BATCH_KIND = {FACTS: FACT_BATCH, INTERACTIONS: EVENT_BATCH}
_BATCH_HEAD = {
    FACTS: b'{"schema_version":1,"type":"fact_batch","facts":[',
    INTERACTIONS: b'{"schema_version":1,"type":"event_batch","events":[',
}
_BATCH_TAIL = b'_batch"'  # in every batch record: both type names end with it
# How ``schemas.base.encode`` begins a single record (field order of the models).
_SINGLE_HEAD = {
    FACTS: b'{"schema_version":1,"fact_id":',
    INTERACTIONS: b'{"schema_version":1,"type":"interaction",',
}
_ITEM_HEAD = b'{"schema_version":'
_ITEM_SEP = b'},{"schema_version":'


def _cut(table: str, value: bytes) -> list[bytes] | None:
    """The items of a batch record as ``schemas.batches.join`` writes them, cut at the bytes
    between items (no parse: ~0.1 us an item where ``split`` spends 4-8 us decoding and
    re-encoding); None when ``value`` is not in that form (``split`` then decides).

    Every item of ours starts with ``{"schema_version":``. Between two items, ``},`` followed
    by that cannot lie inside a JSON string (its quote is not escaped); a cut inside an item
    (a nested list of objects holding that key) leaves pieces whose brackets do not balance,
    which ClickHouse refuses, and the sink then splits that record exactly (``_decode_raw``).
    """
    head = _BATCH_HEAD[table]
    if not (value.startswith(head) and value.endswith(b"}]}")):
        return None
    body = value[len(head) : -2]
    if not body.startswith(_ITEM_HEAD):
        return None
    pieces = body.split(_ITEM_SEP)
    if len(pieces) > MAX_BATCH_ITEMS:
        return None
    if len(pieces) == 1:
        return pieces
    last = len(pieces) - 1
    return [
        (p if i == 0 else _ITEM_HEAD + p) + (b"}" if i < last else b"")
        for i, p in enumerate(pieces)
    ]


# Insert path, chosen per target and measured in CPU time (bench/sink.py --compare, chdb 26.9,
# 200k-row fact batches, same run): on chdb, ``INSERT INTO t (cols) SELECT cols FROM
# Python(batch)`` reads the Arrow table in place (~160k rows per CPU second into sla_facts)
# where clickhouse-connect's insert_arrow serializes it to Arrow IPC in a temp file first
# (~133k); on a server insert_arrow is the way (the HTTP body is that IPC stream). Both carry
# the same settings and dedup token, so idempotency does not depend on the path.
_INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # chdb defaults async_insert=1; dedup tokens and "flushed means written" need sync inserts.
    "async_insert": 0,
    # Replacing/Aggregating engines otherwise collapse every inserted block on the way in
    # (measured ~5x slower on sla_facts); background merges and FINAL/-Merge do it anyway.
    "optimize_on_insert": 0,
}
_CACHE_LIMIT = 500_000
_FOLD_COLUMNS = (
    # what obligations.apply reads, and the position
    "fact_id", "kind", "client_id", "at", "policy_id", "policy_version", "obligation_id",
    "obligation_kind", "thread_key", "channel", "opened_at", "deadline", "fulfilled_at",
    "fulfilled_by_channel", "outcome", "business_seconds", "calendar_seconds",
    "overage_business_seconds", "retracts",
)  # fmt: skip
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
_MICROSECOND = timedelta(microseconds=1)


def _python_column(column: pa.ChunkedArray) -> list[Any]:
    """A column's values as Python objects, as ``to_pylist`` gives them.

    ``to_pylist`` spends ~3 us on each tz-aware timestamp (pyarrow looks the zone up per
    value), most of the fold's cost; microseconds since the epoch added to an aware epoch give
    the same datetimes, same ``ZoneInfo("UTC")`` tzinfo included, for ~0.4 us.
    """
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz == "UTC":
        epoch, step = _UTC_EPOCH, _MICROSECOND
        return [
            None if v is None else epoch + v * step for v in column.cast(pa.int64()).to_pylist()
        ]
    return column.to_pylist()  # type: ignore[no-any-return]


_OBLIGATION_KINDS = pa.array(sorted(str(kind.value) for kind in obl.OBLIGATION_KINDS))


@dataclass
class _Buffer:
    """One table's pending records and their source positions."""

    items: list[Any] = field(default_factory=list)
    positions: list[Position | None] = field(default_factory=list)
    iso: int = 0
    """How many items are rows decoded by ``records`` (timestamps as strings)."""

    def clear(self) -> None:
        self.items.clear()
        self.positions.clear()
        self.iso = 0

    def take(self, items: list[Any], positions: list[Position | None], iso: bool) -> None:
        """Append decoded items (rows from ``records`` when ``iso``, else field dicts)."""
        self.items.extend(items)
        self.positions.extend(positions)
        if iso:
            self.iso += len(items)

    def rows(self) -> tuple[list[Any], bool]:
        """The items as field dicts, and whether their timestamps are all strings.

        A buffer mixing decoded rows and models (not something the runner does) has its
        strings parsed, so each Arrow column holds one Python type.
        """
        if self.iso == 0 or self.iso == len(self.items):
            return self.items, self.iso > 0
        return [_with_datetimes(item) for item in self.items], False


@dataclass
class _RawBuffer:
    """One table's pending Kafka values (bytes as read) and their positions."""

    values: list[bytes] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    """Each value's index among the items of its batch record (-1: a single record)."""
    sources: list[bytes | None] = field(default_factory=list)
    """The batch record a value was cut from by ``_cut`` (None: split exactly, or single)."""

    def clear(self) -> None:
        self.values.clear()
        self.positions.clear()
        self.indices.clear()
        self.sources.clear()


Reject = Callable[[str, DeadLetter], None]
"""Called with (table, dead letter) for a value that is not a valid record of that table."""


_SHM = "/dev/shm"
_BATCH_PREFIX = "shinrai-batch-"


def _batch_dir() -> str:
    return _SHM if os.path.isdir(_SHM) else tempfile.gettempdir()


def remove_stale_batch_files() -> int:
    """Delete batch files left by processes that no longer run (a kill -9 mid-flush).

    The file name carries the writer's pid; a file whose pid is alive may be in use by another
    worker on this machine and is kept. Returns how many files were removed.
    """
    if not Path("/proc/self").exists():
        return 0  # no way to tell a live writer from a dead one here
    removed = 0
    directory = Path(_batch_dir())
    for path in directory.glob(f"{_BATCH_PREFIX}*-*.jsonl"):
        pid = path.name[len(_BATCH_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            continue  # another process removed it, or it is not ours to remove
    return removed


@contextmanager
def _batch_file(raw: _RawBuffer) -> Iterator[str]:
    """A raw buffer as a JSONEachRow file for chdb's ``file()`` (in memory where possible).

    Raises SinkError when the bytes are not UTF-8 (ClickHouse would store them as they are;
    orjson, on the record-by-record path, refuses them and names the record).
    """
    body = json_batches.lines(raw.values, raw.positions)
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise SinkError(f"batch is not UTF-8 at byte {exc.start}") from None
    fd, path = tempfile.mkstemp(
        prefix=f"{_BATCH_PREFIX}{os.getpid()}-", suffix=".jsonl", dir=_batch_dir()
    )
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        yield path
    finally:
        os.unlink(path)


def _with_datetimes(row: dict[str, Any]) -> dict[str, Any]:
    return {k: obl.as_datetime(v) if k in _TIMES else v for k, v in row.items()}


_TIMES = frozenset({"at", "opened_at", "deadline", "fulfilled_at", "occurred_at", "recorded_at"})


def offset_ranges(positions: Sequence[Position | None]) -> dict[tuple[str, int], list[int]]:
    """(topic, partition) -> [first offset, last offset, count] of the positioned records."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for pos in positions:
        if pos is None:
            continue
        topic, partition, offset = pos
        span = ranges.get((topic, partition))
        if span is None:
            ranges[(topic, partition)] = [offset, offset, 1]
            continue
        if offset < span[0]:
            span[0] = offset
        elif offset > span[1]:
            span[1] = offset
        span[2] += 1
    return ranges


def settings_clause(settings: dict[str, Any]) -> str:
    """``k = v, ...`` for an inline SETTINGS clause (strings quoted and escaped)."""
    parts = []
    for key, value in settings.items():
        if not key.isidentifier():
            raise ValueError(f"bad setting name {key!r}")
        if isinstance(value, str):
            value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(f"{key} = {value}")
    return ", ".join(parts)


def _insert_in_place(
    client: ChClient, table: str, data: pa.Table, settings: dict[str, Any]
) -> None:
    """chdb only: insert ``data`` through the Python() table function (no serialization).

    Python() finds its source by variable name in the calling frames, so the name is this
    function's local and unusual enough not to be shadowed; columns are matched by name.
    The settings go inline (``INSERT INTO t SETTINGS ... SELECT``): passed as ``settings=``,
    clickhouse-connect's chdb backend reads, SETs and restores each of them around the insert,
    ~12 extra engine calls that cost more CPU than a small insert itself (bench/sink.py).
    """
    shinrai_arrow_batch = data  # noqa: F841 (read by chdb by name)
    cols = ", ".join(f"`{name}`" for name in data.column_names)
    client.command(
        f"INSERT INTO {table} ({cols}) SETTINGS {settings_clause(settings)} "
        f"SELECT {cols} FROM Python(shinrai_arrow_batch)"
    )


def batch_token(
    table: str,
    positions: Sequence[Position | None],
    ids: Iterable[str],
    ranges: dict[tuple[str, int], list[int]] | None = None,
) -> str:
    """Dedup token for one table batch: its offset ranges per (topic, partition).

    Records without a position contribute their ids, so a position-less batch (e.g. delivery
    records) re-sent with the same content gets the same token. ``ranges`` may be passed when
    the caller already computed ``offset_ranges(positions)``.
    """
    if ranges is None:
        ranges = offset_ranges(positions)
    loose = hashlib.sha256()
    if None in positions:
        for pos, ident in zip(positions, ids, strict=True):
            if pos is None:
                loose.update(ident.encode() + b"\0")
    spec = ";".join(f"{t}/{p}/{a}-{b}/{n}" for (t, p), (a, b, n) in sorted(ranges.items()))
    digest = hashlib.sha256(f"{table}|{spec}|{loose.hexdigest()}".encode()).hexdigest()
    return f"{table}:{digest[:40]}"


class ClickHouseSink:
    """Batched, idempotent writer of Shinrai records into ClickHouse."""

    def __init__(
        self,
        settings: ClickHouseSettings,
        *,
        database: str | None = None,
        migrate: bool = True,
        max_buffer_rows: int | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Remember configuration only; ``setup()`` does the I/O.

        ``max_buffer_rows`` is the hard limit beyond which ``add_*`` raises SinkBackpressure
        (default: four batches). Transient errors are retried ``retries`` times with
        exponential backoff starting at ``backoff_s``.
        """
        self._embedded = parse_url(settings.url).kind == "chdb"  # fail fast on a bad URL, no I/O
        self._settings = settings
        self._database = check_identifier(database or settings.database)
        self._migrate = migrate
        self._max_rows = max_buffer_rows or 4 * settings.batch_rows
        self._retries = retries
        self._backoff_s = backoff_s
        self._clock = clock
        self._sleep = sleep
        self._client: ChClient | None = None
        self._buffers = {name: _Buffer() for name in _POSITIONED}
        self._raw = {FACTS: _RawBuffer(), INTERACTIONS: _RawBuffer()}
        self._first_add: float | None = None
        self._count = 0  # records in all buffers (add() is the hot path: no sum per call)
        self._high_water: dict[tuple[str, str, int], int] = {}
        self._states: OrderedDict[str, obl.ObligationState] = OrderedDict()
        self.skipped = 0
        """Records dropped by ``add_*`` because they were already written (replay)."""
        self.rejected = 0
        """Values given to ``add_*_json`` that were not valid records (dead-lettered)."""
        self.on_reject: Reject | None = None
        """Where rejected values go, with their bytes and reason (default: an error log line)."""

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def database(self) -> str:
        """The target database name."""
        return self._database

    @property
    def client(self) -> ChClient:
        """The connected clickhouse-connect client (after ``setup()``)."""
        if self._client is None:
            raise SinkUnavailable("ClickHouse sink used before setup() or after close()")
        return self._client

    def setup(self) -> None:
        """Connect, apply pending migrations (or check none are pending), load high-water marks."""
        from sinks.clickhouse import migrate

        client = connect(self._settings, database=self._database, create=self._migrate)
        self._client = client
        try:
            if self._migrate:
                applied = migrate.migrate(client, self._database)
                if applied:
                    log.info(
                        "migrated", database=self._database, versions=[m.version for m in applied]
                    )
            else:
                todo = migrate.pending(client, self._database, migrate.load())
                if todo:
                    raise SinkError(
                        f"database {self._database} lacks migrations "
                        f"{[m.version for m in todo]}; run `shinrai db migrate`"
                    )
            self._load_high_water()
            if self._embedded:
                remove_stale_batch_files()
        except BaseException:
            self.close()
            raise
        log.info(
            "sink ready", target=parse_url(self._settings.url).describe(), database=self._database
        )

    def close(self) -> None:
        """Close the connection; buffered records are NOT flushed (call ``flush()`` first)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _load_high_water(self) -> None:
        for table in _POSITIONED:
            sql = (
                f"SELECT topic, partition, max(offset) FROM {table} WHERE offset >= 0 "
                "GROUP BY topic, partition"
            )
            result = self._call(partial(self.client.query, sql), f"high-water of {table}")
            for topic, partition, offset in result.result_rows:
                self._high_water[(table, str(topic), int(partition))] = int(offset)

    # ---- buffering ---------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Records waiting for ``flush()``."""
        return self._count

    def should_flush(self) -> bool:
        """True when the buffer reached ``batch_rows`` or its oldest record ``batch_age_s``."""
        if self._first_add is None:
            return False
        if self.buffered >= self._settings.batch_rows:
            return True
        return self._clock() - self._first_add >= self._settings.batch_age_s

    def _add(self, table: str, item: Any, position: Position | None, iso: bool = False) -> bool:
        if position is not None:
            mark = self._high_water.get((table, position.topic, position.partition))
            if mark is not None and position.offset <= mark:
                self.skipped += 1
                return False
        if self._count >= self._max_rows:
            raise SinkBackpressure(
                f"ClickHouse sink buffer holds {self._count} records (limit {self._max_rows}); "
                "flush before adding more"
            )
        buf = self._buffers[table]
        buf.items.append(item)
        buf.positions.append(position)
        if iso:
            buf.iso += 1
        self._count += 1
        if self._first_add is None:
            self._first_add = self._clock()
        return True

    def add_fact(self, fact: Fact, position: Position | None = None) -> bool:
        """Buffer one fact; False if it was already written (a replayed offset)."""
        return self._add(FACTS, vars(fact), position)

    def add_fact_row(self, row: Row, position: Position | None = None) -> bool:
        """Buffer one fact decoded by ``records.fact_row``; False if already written."""
        return self._add(FACTS, row, position, iso=True)

    def add_interaction(self, event: InteractionEvent, position: Position | None = None) -> bool:
        """Buffer one interaction event; False if it was already written."""
        return self._add(INTERACTIONS, vars(event), position)

    def add_interaction_row(self, row: Row, position: Position | None = None) -> bool:
        """Buffer one event decoded by ``records.interaction_row``; False if already written."""
        return self._add(INTERACTIONS, row, position, iso=True)

    def add_fact_json(self, value: bytes, position: Position) -> bool:
        """Buffer one ``sla-facts`` value as read from Kafka (checked and decoded at flush): a
        single fact, or a ``fact_batch`` record whose every fact becomes a row.

        False if nothing was buffered: already written, or a batch envelope that is wrong
        (dead-lettered whole at once). A value that is not a valid fact, or a batch item that
        is not, is dead-lettered at flush (``on_reject``) and the rest is written.
        """
        return self.add_json_record(FACTS, value, position) > 0

    def add_interaction_json(self, value: bytes, position: Position) -> bool:
        """Buffer one accepted-interactions value as read from Kafka, a single event or an
        ``event_batch`` record (see ``add_fact_json``)."""
        return self.add_json_record(INTERACTIONS, value, position) > 0

    def add_json_record(self, table: str, value: bytes, position: Position) -> int:
        """Buffer one Kafka record of ``table`` (``FACTS`` or ``INTERACTIONS``); the rows it
        buffered (0: already written, or a wrong batch envelope, dead-lettered now).

        A batch record (``schemas.batches``) is split into its items' bytes (no decode into
        rows: ClickHouse parses them at flush as it parses single values), each a row with the
        record's position. A record's rows are buffered together, never some of them: they
        land in one flush, so the high-water mark (its offset) covers all of them or none.
        """
        mark = self._high_water.get((table, position.topic, position.partition))
        if mark is not None and position.offset <= mark:
            self.skipped += 1
            return 0
        if self._count >= self._max_rows:
            raise SinkBackpressure(
                f"ClickHouse sink buffer holds {self._count} records (limit {self._max_rows}); "
                "flush before adding more"
            )
        raw = self._raw[table]
        found = None
        # Compare the value's head first: a scan of the whole value for the batch type names
        # costs ~0.8 us per scan (two in looks_like_batch), as much as a fifth of a row's
        # whole cost in the sink. A record in the canonical single form (the head says what
        # it is) is buffered without a scan: were it a batch envelope as well, its fields
        # would be unknown to the single record's decode and it is dead-lettered either way.
        single = value.startswith(_SINGLE_HEAD[table])
        cut = None if single else _cut(table, value)
        if cut is not None:  # the original record is kept: a wrong cut is split exactly later
            return self._buffer(raw, cut, position, batch=True, source=value)
        if not single and _BATCH_TAIL in value and looks_like_batch(value):
            try:
                found = split(value)
                if found is not None and found[0] != _BATCH_KIND[table]:
                    raise BatchInvalid(
                        f"type: a {found[0]} on the topic of {table} (it takes "
                        f"{_BATCH_KIND[table]} records)"
                    )
            except BatchInvalid as exc:
                field_name, _, reason = str(exc).partition(": ")
                self._reject(table, value, position, records.RecordInvalid(field_name, reason))
                return 0
        if found is None:  # a single record (the common case): appended, no lists built
            raw.values.append(value)
            raw.positions.append(position)
            raw.indices.append(-1)
            raw.sources.append(None)
            self._count += 1
            if self._first_add is None:
                self._first_add = self._clock()
            return 1
        return self._buffer(raw, found[1], position, batch=True, source=None)

    def _buffer(
        self,
        raw: _RawBuffer,
        values: list[bytes],
        position: Position,
        *,
        batch: bool,
        source: bytes | None,
    ) -> int:
        """Buffer ``values`` (a single record's value, or the items of one batch record, all at
        the record's ``position``; item indices from 0, -1 for a single record); how many."""
        added = len(values)
        raw.values.extend(values)
        raw.positions.extend([position] * added)
        raw.indices.extend(range(added) if batch else [-1])
        raw.sources.extend([source] * added)
        self._count += added
        if self._first_add is None:
            self._first_add = self._clock()
        return added

    def add_delivery(self, record: DeliveryRecord, position: Position | None = None) -> bool:
        """Buffer one alert delivery attempt; False if it was already written."""
        return self._add(DELIVERIES, record, position)

    def add(
        self, record: Fact | InteractionEvent | DeliveryRecord, position: Position | None = None
    ) -> bool:
        """Buffer any supported record (dispatch on its type)."""
        if isinstance(record, Fact):
            return self.add_fact(record, position)
        if isinstance(record, InteractionEvent):
            return self.add_interaction(record, position)
        return self.add_delivery(record, position)

    # ---- flushing ----------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every buffer (one insert per table); return the number of records written.

        On error the buffers are kept, so calling ``flush()`` again re-sends the same batches
        with the same dedup tokens. Raises SinkUnavailable when the target is unreachable after
        the retries, SinkError when ClickHouse rejects the data.
        """
        if self.buffered == 0:
            self._first_add = None
            return 0
        parsed = self._prepare_facts()
        inter_raw = self._raw[INTERACTIONS]
        inter_json = (
            self._embedded and bool(inter_raw.values) and not self._buffers[INTERACTIONS].items
        )
        if inter_raw.values and not inter_json:
            self._decode_raw(INTERACTIONS)
        ranges = {
            name: offset_ranges(
                self._raw[name].positions
                if name in self._raw and self._raw[name].positions
                else buf.positions
            )
            for name, buf in self._buffers.items()
        }
        facts = self._buffers[FACTS]
        fact_items, facts_iso = facts.rows()
        if parsed is not None:
            keys: dict[str, RollupKey] = {}
            # Only the obligation facts, and only the fields the fold reads, become Python
            # objects: the rest of the batch stays in Arrow.
            # Converted column by column (``_python_column``), zipped into field dicts in C.
            wanted = parsed.select((*_FOLD_COLUMNS, "offset")).filter(
                pc.and_(
                    pc.is_in(parsed.column("kind"), _OBLIGATION_KINDS),
                    pc.is_valid(parsed.column("obligation_id")),
                )
            )
            values = [_python_column(wanted.column(name)) for name in _FOLD_COLUMNS]
            relevant = [
                dict(zip(_FOLD_COLUMNS, row, strict=True)) for row in zip(*values, strict=True)
            ]
            states = self._fold_obligations(
                relevant, wanted.column("offset").to_pylist(), relevant=True
            )
            fact_token = batch_token(FACTS, self._raw[FACTS].positions, (), ranges[FACTS])
        else:
            keys = self._resolve_retractions(fact_items)
            states = self._fold_obligations(
                fact_items, [None if p is None else p.offset for p in facts.positions]
            )
            fact_token = batch_token(
                FACTS, facts.positions, (f["fact_id"] for f in fact_items), ranges[FACTS]
            )
        plan: list[tuple[str, Callable[[], pa.Table | json_batches.Shape], str]] = []
        if states:
            plan.append(
                (
                    OBLIGATIONS,
                    lambda: rows.obligations_table(list(states.values())),
                    f"{OBLIGATIONS}:{fact_token}",
                )
            )
        inter = self._buffers[INTERACTIONS]
        inter_token = batch_token(INTERACTIONS, inter_raw.positions, (), ranges[INTERACTIONS])
        if inter_json:
            plan.append((INTERACTIONS, lambda: json_batches.INTERACTIONS, inter_token))
        elif inter.items:
            events, events_iso = inter.rows()
            plan.append(
                (
                    INTERACTIONS,
                    lambda: rows.interactions_table(events, inter.positions, iso_times=events_iso),
                    batch_token(
                        INTERACTIONS,
                        inter.positions,
                        (e["event_id"] for e in events),
                        ranges[INTERACTIONS],
                    ),
                )
            )
        deliv = self._buffers[DELIVERIES]
        if deliv.items:
            ids = (f"{d.alert_id}|{d.target}|{d.attempt}|{d.at.isoformat()}" for d in deliv.items)
            plan.append(
                (
                    DELIVERIES,
                    lambda: rows.deliveries_table(deliv.items, deliv.positions),
                    batch_token(DELIVERIES, deliv.positions, ids),
                )
            )
        if parsed is not None:
            # Last: the sla_facts high-water mark must never run ahead of derived obligations.
            plan.append((FACTS, lambda: parsed, fact_token))
        elif fact_items:
            # Last: the sla_facts high-water mark must never run ahead of derived obligations.
            plan.append(
                (
                    FACTS,
                    lambda: rows.facts_table(
                        fact_items, facts.positions, keys, iso_times=facts_iso
                    ),
                    fact_token,
                )
            )
        written = 0
        for table, build, token in plan:
            data = build()
            if isinstance(data, json_batches.Shape):
                if not self._insert_json(table, data, token):
                    self._insert_decoded_interactions()
                continue
            self._insert(table, data, token)
        for name, buf in self._buffers.items():
            for (topic, partition), (_, last, _) in ranges[name].items():
                mark = (name, topic, partition)
                self._high_water[mark] = max(self._high_water.get(mark, -1), last)
            written += len(buf.items) + (len(self._raw[name].values) if name in self._raw else 0)
        self._remember(states)
        for buf in self._buffers.values():
            buf.clear()
        for raw in self._raw.values():
            raw.clear()
        self._count = 0
        self._first_add = None
        return written

    # ---- JSON batches ------------------------------------------------------------------------

    def _prepare_facts(self) -> pa.Table | None:
        """The buffered fact values parsed and checked by ClickHouse, as an Arrow table of
        ``sla_facts`` rows; None when the facts go the row path instead (then they are decoded
        into the row buffer: a server target, rows mixed in, a bad value, or a retraction, whose
        rollup key is looked up in Python)."""
        raw = self._raw[FACTS]
        if not raw.values:
            return None
        if self._embedded and not self._buffers[FACTS].items:
            parsed = self._parse_json(FACTS, json_batches.FACTS)
            if parsed is not None:
                if not pc.any(pc.equal(parsed.column("kind"), FactKind.RETRACTED.value)).as_py():
                    return parsed
                items = parsed.select([name for name, _ in rows.FACT_FIELDS]).to_pylist()
                self._buffers[FACTS].take(items, list(raw.positions), iso=False)
                raw.clear()
                return None
        self._decode_raw(FACTS)
        return None

    def _parse_json(self, table: str, shape: json_batches.Shape) -> pa.Table | None:
        """SELECT the table's rows from its raw values (None if ClickHouse refused the batch)."""
        raw = self._raw[table]
        sql_settings = settings_clause(json_batches.JSON_SETTINGS)
        try:
            with _batch_file(raw) as path:
                parsed: pa.Table = self._call(
                    partial(
                        self.client.query_arrow, f"{shape.query(path)} SETTINGS {sql_settings}"
                    ),
                    f"parse {len(raw.values)} {table} values",
                )
        except SinkUnavailable:
            raise
        except SinkError as exc:
            log.info("json_batch_refused", table=table, rows=len(raw.values), error=str(exc)[:300])
            return None
        if parsed.num_rows != len(raw.values):  # e.g. a value holding two JSON objects
            log.info("json_batch_refused", table=table, rows=len(raw.values), got=parsed.num_rows)
            return None
        return parsed

    def _insert_json(self, table: str, shape: json_batches.Shape, token: str) -> bool:
        """INSERT … SELECT from the table's raw values; False if ClickHouse refused the batch."""
        raw = self._raw[table]
        settings = {
            **_INSERT_SETTINGS,
            **json_batches.JSON_SETTINGS,
            "insert_deduplication_token": token,
        }
        cols = ", ".join(f"`{c}`" for c in shape.columns)
        try:
            with _batch_file(raw) as path:
                sql = (
                    f"INSERT INTO {table} ({cols}) SETTINGS {settings_clause(settings)} "
                    f"{shape.query(path)}"
                )
                self._call(
                    partial(self.client.command, sql), f"insert {len(raw.values)} {table} values"
                )
        except SinkUnavailable:
            raise
        except SinkError as exc:
            log.info("json_batch_refused", table=table, rows=len(raw.values), error=str(exc)[:300])
            return False
        return True

    def _insert_decoded_interactions(self) -> None:
        """The row path for an interactions batch ClickHouse refused: decode, isolate, insert."""
        self._decode_raw(INTERACTIONS)
        inter = self._buffers[INTERACTIONS]
        events, iso = inter.rows()
        if events:
            token = batch_token(INTERACTIONS, inter.positions, (e["event_id"] for e in events))
            self._insert(
                INTERACTIONS, rows.interactions_table(events, inter.positions, iso_times=iso), token
            )

    def _decode_raw(self, table: str) -> None:
        """Decode a table's raw values one by one into its row buffer; dead-letter bad ones."""
        raw = self._raw[table]
        buf = self._buffers[table]
        decode = records.decode_fact if table == FACTS else records.decode_interaction
        values, sources, n, i = raw.values, raw.sources, len(raw.values), 0
        while i < n:
            pos, source = raw.positions[i], sources[i]
            if source is None:
                todo = [(values[i], raw.indices[i])]
                i += 1
            else:  # the items ``_cut`` made of one batch record: split it exactly now
                end = i + 1
                while end < n and sources[end] is source and raw.indices[end] == end - i:
                    end += 1
                self._count -= end - i
                i = end
                try:
                    found = split(source)
                    if found is None:
                        raise BatchInvalid("<root>: a batch record that is not valid JSON")
                except BatchInvalid as exc:
                    field_name, _, reason = str(exc).partition(": ")
                    self._reject(table, source, pos, records.RecordInvalid(field_name, reason))
                    continue
                todo = [(item, index) for index, item in enumerate(found[1])]
                self._count += len(todo)
            for value, index in todo:
                try:
                    item, iso = decode(value)
                except records.RecordInvalid as exc:
                    self._count -= 1
                    self._reject(table, value, pos, exc, index)
                    continue
                buf.take([item], [pos], iso)
        raw.clear()

    def _reject(
        self,
        table: str,
        value: bytes,
        pos: Position,
        exc: records.RecordInvalid,
        index: int = -1,
    ) -> None:
        """Dead-letter one value (``index`` >= 0: that item of the batch record at ``pos``)."""
        self.rejected += 1
        item = f"#{index}" if index >= 0 else ""  # the item's place in its batch record
        letter = DeadLetter(
            raw=value,
            reason=f"{exc.field}: {exc.reason}",
            source=f"clickhouse-sink:{table}",
            origin=f"{pos.topic}/{pos.partition}@{pos.offset}{item}",
        )
        if self.on_reject is not None:
            self.on_reject(table, letter)
        else:
            log.error("record_rejected", table=table, origin=letter.origin, reason=letter.reason)

    def _insert(self, table: str, data: pa.Table, token: str) -> None:
        settings = {**_INSERT_SETTINGS, "insert_deduplication_token": token}
        send: Callable[[], Any]
        if self._embedded:
            send = partial(_insert_in_place, self.client, table, data, settings)
        else:
            send = partial(self.client.insert_arrow, table, data, settings=settings)
        self._call(send, f"insert {data.num_rows} rows into {table}")

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run ``fn``, retrying transient errors with exponential backoff; translate failures."""
        attempt = 0
        while True:
            try:
                return fn()
            except SinkError:
                raise
            except Exception as exc:
                if attempt < self._retries and is_transient(exc):
                    delay = self._backoff_s * (2**attempt)
                    log.warning("transient ClickHouse error, retrying", what=what, delay_s=delay)
                    self._sleep(delay)
                    attempt += 1
                    continue
                raise translate(exc, what) from exc

    # ---- derived rows ------------------------------------------------------------------------

    def _resolve_retractions(self, facts: Sequence[Row]) -> dict[str, RollupKey]:
        """Rollup keys of every fact retracted in this batch (from the batch, else ClickHouse).

        Retractions are rare, so a point lookup by the table's key (client_id, fact_id) is
        cheaper than caching a key for every fact that passes through.
        """
        retracted = FactKind.RETRACTED
        wanted = {
            f["retracts"]: f["client_id"]
            for f in facts
            if f["kind"] == retracted and f.get("retracts")
        }
        if not wanted:
            return {}
        found: dict[str, RollupKey] = {}
        for fact in facts:
            if fact["fact_id"] in wanted:
                found[fact["fact_id"]] = RollupKey.of(fact)
        missing = wanted.keys() - found.keys()
        if missing:
            result = self._call(
                lambda: self.client.query(
                    "SELECT fact_id, kind, at, channel, "
                    "if(kind = 'speed_of_answer', call_outcome, outcome), answered_within_target "
                    f"FROM {FACTS} WHERE client_id IN {{clients:Array(String)}} "
                    "AND fact_id IN {ids:Array(String)}",
                    parameters={
                        "clients": sorted({wanted[m] for m in missing}),
                        "ids": sorted(missing),
                    },
                ),
                "look up retracted facts",
            )
            for fact_id, kind, at, channel, outcome, within in result.result_rows:
                found[fact_id] = RollupKey(
                    kind,
                    rows.utc(at) or at,
                    channel,
                    outcome,
                    None if within is None else bool(within),
                )
        return found

    def _fold_obligations(
        self, facts: Sequence[Row], offsets: Sequence[int | None], *, relevant: bool = False
    ) -> dict[str, obl.ObligationState]:
        """Fold this batch's facts (field dicts) into obligation states; return the changed.

        ``offsets``: each fact's Kafka offset (None: no position). ``relevant``: the caller
        passes only facts of an obligation kind with an obligation id.
        """
        kinds = obl.OBLIGATION_KINDS
        pairs = list(zip(facts, offsets, strict=True))
        if not relevant:
            pairs = [
                p for p in pairs if p[0]["kind"] in kinds and p[0].get("obligation_id") is not None
            ]
        if not pairs:
            return {}
        cache = self._states
        # Only a fact that is not an OPENED and whose obligation is not cached needs the stored
        # state; an OPENED fact starts a state of its own.
        unknown: dict[str, str] = {}
        opened_here: set[str] = set()
        opened_kind = FactKind.OBLIGATION_OPENED
        for f, _ in pairs:
            oid = f["obligation_id"]
            if oid in opened_here or oid in cache:
                continue
            if f["kind"] == opened_kind:
                opened_here.add(oid)
            else:
                unknown.setdefault(oid, f["client_id"])
        stored = self._load_states(unknown) if unknown else {}
        changed: dict[str, obl.ObligationState] = {}
        apply = obl.apply
        for fact, offset in pairs:
            oid = fact["obligation_id"]
            folded = changed.get(oid)  # folded in this batch already
            state = folded or cache.get(oid) or stored.get(oid)
            if offset is None:
                version = state.version + 1 if state is not None else 0
            else:
                version = offset
                if folded is None and state is not None and state.version >= version:
                    continue  # already folded into the stored state (replay after partial flush)
                # A state folded in this batch may be at this very offset: the items of one
                # batch record share it, and all land in this flush (never split across two).
            new = apply(state, fact, version)
            if new is not None and new is not state:
                changed[oid] = new
        for oid, state in stored.items():
            cache.setdefault(oid, state)  # read from ClickHouse: already true
        return changed

    def _load_states(self, wanted: dict[str, str]) -> dict[str, obl.ObligationState]:
        result = self._call(
            lambda: self.client.query(
                f"SELECT {', '.join(rows.OBLIGATION_COLUMNS)} FROM {OBLIGATIONS} FINAL "
                "WHERE client_id IN {clients:Array(String)} "
                "AND obligation_id IN {ids:Array(String)}",
                parameters={"clients": sorted(set(wanted.values())), "ids": sorted(wanted)},
            ),
            "load obligation states",
        )
        return {
            row["obligation_id"]: rows.obligation_from_row(row) for row in result.named_results()
        }

    def _remember(self, states: dict[str, obl.ObligationState]) -> None:
        """After a successful flush: cache the new obligation states (bounded LRU)."""
        for oid, state in states.items():
            self._states[oid] = state
            self._states.move_to_end(oid)
        while len(self._states) > _CACHE_LIMIT:
            self._states.popitem(last=False)

    # ---- directory ---------------------------------------------------------------------------

    def upsert_clients(self, clients: Sequence[Client], version: int) -> None:
        """Write the client directory now (rows at ``version``; the highest version wins)."""
        if not clients:
            return
        table = rows.clients_table(clients, version)
        digest = hashlib.sha256(
            "|".join(c.model_dump_json() for c in clients).encode() + str(version).encode()
        ).hexdigest()
        self._insert("clients", table, f"clients:{digest[:40]}")
