"""The rooms and their order: each module imports only from its own layer or the ones below.

    foundation (shinrai: settings, errors, logging, kafka options, metrics, local broker)
      < schemas (the wire contract and topic names)
      < engine (the pure SLA core)
      < streams | sinks | producers | dashboard (adapters; siblings never import each other)
      < shinrai.topic_admin (Kafka admin of the topics in schemas.topics)
      < shinrai.jobs (worker composition root, demo, backfill service)
      < the CLI (shinrai.cli, shinrai.commands)

One documented exception: the dashboard reads the store the ClickHouse sink writes, through the
storage contract's client and named queries (``sinks.clickhouse.client``/``queries``).
The test reads imports from the source (``ast``), including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shinrai", "schemas", "engine", "streams", "sinks", "producers", "dashboard")
ADAPTERS = 3
ALLOWED_ACROSS = {
    ("dashboard", "sinks.clickhouse.client"),
    ("dashboard", "sinks.clickhouse.queries"),
}


def layer(module: str) -> tuple[int, str]:
    """(rank, room) of a module of this project."""
    top = module.split(".")[0]
    if module.startswith("shinrai.commands") or module in ("shinrai.cli", "shinrai.__main__"):
        return 6, "cli"
    if module.startswith("shinrai.jobs"):
        return 5, "jobs"
    if module == "shinrai.topic_admin":
        return 4, "topic admin"
    if top == "shinrai":
        return 0, "foundation"
    if top == "schemas":
        return 1, "schemas"
    if top == "engine":
        return 2, "engine"
    return ADAPTERS, top


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    name = ".".join(parts)
    return name.removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    """Every absolute import of one of our packages in ``path`` (top level or nested)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def violations(root: Path = ROOT) -> list[str]:
    out: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            rank, room = layer(module)
            for imported in sorted(imports_of(path)):
                other_rank, other_room = layer(imported)
                if other_rank > rank:
                    out.append(
                        f"{module} ({room}) imports {imported} ({other_room}), a layer above"
                    )
                elif (
                    rank == other_rank == ADAPTERS
                    and room != other_room
                    and (room, imported) not in ALLOWED_ACROSS
                ):
                    out.append(f"{module} ({room}) imports its sibling {imported}")
    return out


def test_every_module_imports_only_its_layer_or_below() -> None:
    found = violations()
    assert not found, "layer order broken:\n" + "\n".join(found)


def test_the_layers_are_seen() -> None:
    # The check is only worth something if it sees the rooms: each has modules with imports.
    rooms = {layer(module_name(p))[1] for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    assert {
        "foundation",
        "schemas",
        "engine",
        "streams",
        "sinks",
        "producers",
        "dashboard",
    } <= rooms
    assert {"jobs", "cli"} <= rooms
    assert imports_of(ROOT / "streams" / "processor.py") >= {"engine.core"}


def test_a_reversed_import_is_caught(tmp_path: Path) -> None:
    files = {
        "engine/core.py": "def f():\n    from streams.processor import attach_processor\n",
        "sinks/x.py": "from producers.parsers import email\n",
        "dashboard/y.py": "from sinks.clickhouse.queries import run_query\n",
        "schemas/z.py": "import shinrai.settings\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = violations(tmp_path)
    assert found == [
        "engine.core (engine) imports streams.processor (streams), a layer above",
        "sinks.x (sinks) imports its sibling producers.parsers",
    ]
