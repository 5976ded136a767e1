"""The published JSON Schema files must equal what the models generate (run `shinrai schemas export`)."""

from __future__ import annotations

import json

import pytest

from schemas.jsonschema import SCHEMA_DIR, expected_files

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(expected_files()))
def test_schema_file_is_current(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{path} missing: run `shinrai schemas export`"
    assert path.read_text(encoding="utf-8") == expected_files()[name], (
        f"{path} is stale: run `shinrai schemas export` and commit the result"
    )


def test_no_orphan_schema_files() -> None:
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert on_disk == set(expected_files())


def test_event_schema_names_required_fields() -> None:
    schema = json.loads(expected_files()["interaction-event.v1.schema.json"])
    assert {"event_id", "channel", "kind", "direction", "occurred_at", "recorded_at"} <= set(
        schema["required"]
    )
    assert schema["additionalProperties"] is False
