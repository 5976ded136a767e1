"""Build the participant resolver the parsers need from an optional directory file."""

from __future__ import annotations

from pathlib import Path

from producers.directory_io import load_directory
from producers.resolution import Resolver
from schemas.directory import ClientDirectory


def build_resolver(directory: Path | None, *, default_region: str = "US") -> Resolver:
    """A resolver over ``directory`` (YAML or CSV); without one every counterpart stays unknown.

    Unknown counterparts are not an error: their events are still produced (keyed ``_unknown``),
    so a directory fixed later can re-attribute them on replay.
    """
    model = (
        load_directory(directory, default_region=default_region)
        if directory is not None
        else ClientDirectory()
    )
    return Resolver(model, default_region=default_region)
