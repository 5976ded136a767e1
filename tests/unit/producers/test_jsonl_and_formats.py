"""The jsonl format and the format registry's option handling."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.formats import FORMATS, get_format, load_cdr_mapping, open_parser
from producers.jsonl import ParsedPolicy, parse_jsonl
from producers.parsers.base import Parsed, Rejected
from schemas.base import encode
from schemas.calendars import BusinessCalendar
from schemas.events import ClientPolicyChanged
from schemas.policies import SlaPolicy
from shinrai.errors import ConfigError
from tests.builders import jsonl, numbered_event

pytestmark = pytest.mark.unit


def test_jsonl_yields_events_policies_and_rejects_with_field_and_bytes(tmp_path: Path) -> None:
    event = numbered_event(1, "acme")
    policy = ClientPolicyChanged(
        event_id="p1",
        client_id="acme",
        occurred_at=datetime(2024, 4, 1, tzinfo=UTC),
        recorded_at=datetime(2024, 4, 1, tzinfo=UTC),
        policy=SlaPolicy.default(),
        calendar=BusinessCalendar(calendar_id="default", timezone="UTC"),
    )
    bad_field = b'{"event_id":"x","channel":"fax"}'
    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl([event]) + b"\n" + encode(policy) + b"\r\n" + bad_field + b"\n[1]\n{")

    results = list(parse_jsonl(path))
    assert isinstance(results[0], Parsed)
    assert results[0].event == event
    assert results[0].origin == "in.jsonl:1"
    assert isinstance(results[1], ParsedPolicy)
    assert results[1].event == policy
    rejected = results[2:]
    assert all(isinstance(r, Rejected) for r in rejected)
    assert [r.origin for r in rejected] == ["in.jsonl:4", "in.jsonl:5", "in.jsonl:6"]
    first = rejected[0]
    assert isinstance(first, Rejected)
    assert first.raw == bad_field
    assert "channel: " in first.reason
    assert "occurred_at: " in first.reason
    assert "expected a JSON object" in rejected[1].reason
    assert "not valid JSON" in rejected[2].reason


def test_every_cli_format_is_registered() -> None:
    import click

    from shinrai.cli import main

    for name in ("produce", "backfill"):
        command = main.commands[name]
        (option,) = (p for p in command.params if p.name == "fmt")
        assert isinstance(option.type, click.Choice)
        assert tuple(option.type.choices) == tuple(FORMATS)  # the registry, not a copy of it
    for fmt in FORMATS.values():
        assert callable(fmt.load())


def test_an_option_the_format_does_not_use_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not use --tz"):
        open_parser(get_format("jsonl"), tmp_path, None, {"tz": "Asia/Tokyo"})
    with pytest.raises(ConfigError, match="does not use --mapping"):
        open_parser(get_format("zoom"), tmp_path, None, {"mapping": "x.yaml", "tz": None})


def test_ics_needs_an_ordered_window(tmp_path: Path) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--window-start and --window-end"):
        open_parser(get_format("ics"), tmp_path, None, {"window_start": start})
    with pytest.raises(ConfigError, match="after --window-start"):
        open_parser(get_format("ics"), tmp_path, None, {"window_start": start, "window_end": start})


def test_cdr_mapping_from_builtin_and_file(tmp_path: Path) -> None:
    assert load_cdr_mapping("callcenter-1999").source == "callcenter-1999"
    with pytest.raises(ConfigError, match="needs --mapping"):
        load_cdr_mapping(None)
    bad = tmp_path / "m.yaml"
    bad.write_text("source: pbx\nstart_column: start\n")
    with pytest.raises(ConfigError, match="outcome_column"):
        load_cdr_mapping(bad)


def test_unknown_format() -> None:
    with pytest.raises(ConfigError, match="unknown format 'fax'"):
        get_format("fax")
