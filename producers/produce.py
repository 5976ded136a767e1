"""The producing runner: parser results in, Kafka records (or a dry-run count) and dead letters out.

Pure of I/O choices: the caller passes the sink (Kafka or none for a dry run), the dead-letter
writer and the rejects file. One bad record never aborts a run: it is counted, written to the
rejects file and dead-lettered, and the next record is read.

Events are produced in event-time order (``occurred_at``, then ``event_id``), whatever the order
of the archive: the processor reads a partition in event time, and an archive that is not sorted
(mbox files rarely are; three list archivers interleave) would otherwise turn its own earlier
events late (corrected, or beyond the duplicate window dead-lettered). The run keeps the parsed
events (a few hundred bytes each, never bodies) until the archive is read, then sends them.

Duplicates (an ``event_id`` already seen in this run, e.g. one message exported by three list
archivers) are counted and NOT produced again: the engine would ignore them anyway, and not
producing them keeps the log smaller. Duplicates across runs are the engine's job (DESIGN §3).

With an events file (``shinrai produce --out``) the same distinct events, in the same order, are
written as canonical JSON lines before anything is sent, so the file is whole even when the
broker fails; a dry run writes the file only.

The events go out through an ``EventWriter``: with the Kafka producer's (``event_writer``) as
``event_batch`` records of up to ``SHINRAI_KAFKA__BATCH_EVENTS`` events of one partition; the
counts (``produced``) are events, whatever the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from producers.formats import ProduceResult
from producers.jsonl import EventsFile, ParsedPolicy
from producers.kafka_producer import (
    DeadLetterWriter,
    EventWriter,
    RecordSink,
    RecordTooLarge,
    event_key,
    record_size,
)
from producers.parsers.base import Rejected
from producers.rejects import RejectsFile
from schemas.base import encode
from schemas.deadletter import DeadLetter


@dataclass
class RunSummary:
    """What a run did. The same object is printed for a real run and for a dry run."""

    source: str
    dry_run: bool
    read: int = 0  # results the parser yielded (events + rejects)
    produced: int = 0  # distinct events sent (or, in a dry run, that would be sent)
    duplicates: int = 0
    rejected: int = 0
    unknown_client: int = 0  # produced events whose client could not be resolved
    written: int = 0  # events written to the events file (--out), 0 without one
    by_kind: Counter[str] = field(default_factory=Counter)
    by_direction: Counter[str] = field(default_factory=Counter)
    by_kind_direction: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    event_ids: set[str] = field(default_factory=set, repr=False)

    @property
    def distinct_event_ids(self) -> int:
        """How many different event ids the run saw (produced + duplicates collapse here)."""
        return len(self.event_ids)

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON summary; counters sorted by count so the big ones come first."""

        def ordered(counter: Counter[str]) -> dict[str, int]:
            return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "read": self.read,
            "produced": self.produced,
            "duplicates": self.duplicates,
            "distinct_event_ids": self.distinct_event_ids,
            "unknown_client": self.unknown_client,
            "written": self.written,
            "rejected": self.rejected,
            "by_kind": ordered(self.by_kind),
            "by_direction": ordered(self.by_direction),
            "by_kind_direction": ordered(self.by_kind_direction),
            "rejected_by_reason": ordered(self.rejected_by_reason),
        }


def _kind_and_direction(result: ProduceResult) -> tuple[str, str]:
    if isinstance(result, ParsedPolicy):
        return "policy_changed", "n/a"
    assert not isinstance(result, Rejected)
    return result.event.kind.value, result.event.direction.value


def run(
    results: Iterable[ProduceResult],
    *,
    source: str,
    topic: str,
    sink: RecordSink | None,
    dead_letters: DeadLetterWriter | None = None,
    rejects: RejectsFile | None = None,
    on_result: Callable[[RunSummary], None] | None = None,
    summary: RunSummary | None = None,
    out: EventsFile | None = None,
    max_record_bytes: int | None = None,
    writer: EventWriter | None = None,
) -> RunSummary:
    """Send every parsed event to ``topic`` (``sink`` None = dry run) and route every reject.

    ``out``: also write the distinct events, in the order they are sent, and finish the file
    before the first send (the caller closes it).

    ``max_record_bytes``: the topic's record limit (``KafkaRecordProducer.max_record_bytes``); an
    event whose encoded record is larger is rejected like a bad record (rejects file, dead
    letter with its event id and the limit), never sent, and the run goes on.

    ``writer``: how events reach ``sink`` (batch records: ``KafkaRecordProducer.event_writer``);
    default one record per event.

    Returns the summary after the sink is flushed: a non-raising return means every produced
    record and dead letter was acknowledged. ``KafkaUnavailable`` propagates (a missing broker is
    not a bad record); a caller that passes its own ``summary`` can still print the partial counts.
    """
    if summary is None:
        summary = RunSummary(source=source, dry_run=sink is None)
    accepted: list[Any] = []  # the distinct events, sent in event-time order at the end

    def reject(letter: DeadLetter, counted_as: str) -> None:
        summary.rejected += 1
        summary.rejected_by_reason[counted_as] += 1
        if rejects is not None:
            rejects.write(letter)
        if dead_letters is not None:
            dead_letters.write(letter)

    for result in results:
        summary.read += 1
        if isinstance(result, Rejected):
            letter = DeadLetter(
                raw=result.raw, reason=result.reason, source=source, origin=result.origin
            )
            reject(letter, result.reason)
        else:
            event = result.event
            if event.event_id in summary.event_ids:
                summary.duplicates += 1
            elif (too_large := _too_large(event, topic, max_record_bytes)) is not None:
                summary.event_ids.add(event.event_id)  # a repeat of it is a duplicate
                letter = DeadLetter(
                    raw=too_large[0], reason=str(too_large[1]), source=source, origin=result.origin
                )
                reject(letter, f"over the {too_large[1].limit:,}-byte record limit of {topic}")
            else:
                summary.event_ids.add(event.event_id)
                kind, direction = _kind_and_direction(result)
                summary.by_kind[kind] += 1
                summary.by_direction[direction] += 1
                summary.by_kind_direction[f"{kind}/{direction}"] += 1
                if event.client_id is None:
                    summary.unknown_client += 1
                accepted.append(event)
        if on_result is not None:
            on_result(summary)
    accepted.sort(key=lambda event: (event.occurred_at, event.event_id))
    if out is not None:
        for event in accepted:
            out.write(event)
        out.finish()
        summary.written = out.written
    if sink is not None and writer is None:
        writer = EventWriter(sink, topic)
    for event in accepted:
        if writer is not None:
            writer.write(event)
        summary.produced += 1
    if on_result is not None and accepted:
        on_result(summary)
    if writer is not None:
        writer.flush()
    if sink is not None:
        sink.flush()
    return summary


def _too_large(event: Any, topic: str, limit: int | None) -> tuple[bytes, RecordTooLarge] | None:
    """The encoded event and the error when its record exceeds ``limit``, else None."""
    if limit is None:
        return None
    value = encode(event)
    size = record_size(event_key(event), value)
    if size <= limit:
        return None
    return value, RecordTooLarge(topic, size, limit, label=f"event {event.event_id}", raw=value)
