"""JSON Schema files generated from the canonical models, for producers in other languages.

The files live in ``schemas/json/`` and ship as package data (``shipped_files()`` reads them with
``importlib.resources``, so an installed wheel has them too). ``shinrai schemas export`` rewrites
them and a unit test fails when they are stale, so the published contract never drifts from the
code.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from pydantic import BaseModel

from schemas.alerts import Alert
from schemas.batches import EventBatch, FactBatch
from schemas.calendars import BusinessCalendar
from schemas.directory import ClientDirectory
from schemas.events import ClientPolicyChanged, InteractionEvent
from schemas.facts import Fact
from schemas.policies import SlaPolicy

SHIPPED: Traversable = files("schemas") / "json"
# Where `shinrai schemas export` writes by default, relative to the working directory: run at the
# repository root it refreshes the committed (and shipped) files.
EXPORT_DIR = Path("schemas") / "json"

EXPORTED: dict[str, type[BaseModel]] = {
    "interaction-event": InteractionEvent,
    "client-policy-changed": ClientPolicyChanged,
    "fact": Fact,
    "alert": Alert,
    "client-directory": ClientDirectory,
    "sla-policy": SlaPolicy,
    "business-calendar": BusinessCalendar,
    "event-batch": EventBatch,
    "fact-batch": FactBatch,
}


def render(model: type[BaseModel]) -> str:
    """The JSON Schema of ``model`` (validation mode) as stable, pretty JSON text."""
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content for every exported model."""
    return {f"{name}.v1.schema.json": render(model) for name, model in EXPORTED.items()}


def shipped_files() -> dict[str, str]:
    """File name -> content of the schema files shipped in the package."""
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in SHIPPED.iterdir()
        if p.is_file() and p.name.endswith(".schema.json")
    }


def export(directory: Path = EXPORT_DIR) -> list[Path]:
    """(Re)write every schema file; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
