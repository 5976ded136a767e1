"""``shinrai schemas export``: write JSON Schema files of the canonical models."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def command() -> None:
    """JSON Schemas of the canonical models (for producers in other languages)."""


command.name = "schemas"


@command.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: schemas/json under the working directory; "
                   "at the repository root that refreshes the committed files).")  # fmt: skip
def export(out: Path | None) -> None:
    """(Re)write the JSON Schema files."""
    from schemas.jsonschema import EXPORT_DIR
    from schemas.jsonschema import export as write

    for path in write(out or EXPORT_DIR):
        click.echo(str(path))
