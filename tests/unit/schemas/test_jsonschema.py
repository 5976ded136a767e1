"""The published JSON Schema files must equal what the models generate (run `shinrai schemas export`).

They are read as the package ships them (``importlib.resources``), the way an installed wheel
reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.jsonschema import expected_files, export, shipped_files

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(expected_files()))
def test_schema_file_is_current(name: str) -> None:
    shipped = shipped_files()
    assert name in shipped, f"schemas/json/{name} missing: run `shinrai schemas export`"
    assert shipped[name] == expected_files()[name], (
        f"schemas/json/{name} is stale: run `shinrai schemas export` and commit the result"
    )


def test_no_orphan_schema_files() -> None:
    assert set(shipped_files()) == set(expected_files())


def test_export_writes_every_file(tmp_path: Path) -> None:
    written = export(tmp_path / "out")
    assert {p.name: p.read_text(encoding="utf-8") for p in written} == expected_files()


def test_event_schema_names_required_fields() -> None:
    schema = json.loads(expected_files()["interaction-event.v1.schema.json"])
    assert {"event_id", "channel", "kind", "direction", "occurred_at", "recorded_at"} <= set(
        schema["required"]
    )
    assert schema["additionalProperties"] is False
