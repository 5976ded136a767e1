"""Parameter types and options more than one command uses (one definition each).

Nothing heavy is imported at module level: ``shinrai --help`` imports every command module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shinrai.commands._context import get_settings

if TYPE_CHECKING:
    from shinrai.settings import ClickHouseSettings

F = TypeVar("F", bound=Callable[..., Any])


class FormatChoice(click.Choice[str]):
    """``--format``: the names of the input-format registry (``producers.formats.FORMATS``).

    The registry imports the event schemas, so it is read when the choice is first needed
    (parsing, or the command's own ``--help``), not when the command table is built.
    """

    name = "format"

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> Sequence[str]:
        """The registered format names, in registry order."""
        from producers.formats import FORMATS

        return tuple(FORMATS)

    @choices.setter
    def choices(self, _value: Sequence[str]) -> None:
        """click.Choice assigns its choices in ``__init__``; the registry is the only source."""


class Instant(click.ParamType):
    """An ISO-8601 instant.

    ``naive_utc``: a value without an offset is UTC (else it is an error: an event log's time
    zone is never guessed). ``allow_now``: ``now`` is the current instant.
    """

    name = "instant"

    def __init__(self, *, naive_utc: bool = False, allow_now: bool = False) -> None:
        self.naive_utc = naive_utc
        self.allow_now = allow_now

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse ``value``; a bad value is a usage error naming the option."""
        if isinstance(value, datetime):
            return value
        if self.allow_now and value == "now":
            return datetime.now(UTC)
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 instant", param, ctx)
        if instant.tzinfo is not None:
            return instant
        if self.naive_utc:
            return instant.replace(tzinfo=UTC)
        self.fail(f"{value!r} needs a UTC offset, e.g. {value}+09:00", param, ctx)


DIRECTORY_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
"""A client directory file (clients.yaml or clients.csv) that must exist."""


def format_option(help_text: str | None = None) -> Callable[[F], F]:
    """The required ``--format`` option (stored as ``fmt``) over the format registry."""
    return click.option("--format", "fmt", required=True, type=FormatChoice(), help=help_text)


region_option = click.option(
    "--region",
    default="US",
    show_default=True,
    help="Default phone region (ISO 3166 code) for numbers written without a country code.",
)
"""``--region``: how national phone numbers of the input are read."""

mapping_option = click.option(
    "--mapping",
    default=None,
    metavar="FILE|NAME",
    help="cdr-csv: column mapping, a YAML/JSON file or a built-in name: callcenter-1999 "
    "(the 1999 call-centre export of the shared data). An unknown name lists the built-ins.",
)
"""``--mapping``: a CDR column mapping file or a built-in name (``producers.formats``).

Checked by the format registry, not here (the registry is heavy to import); a test keeps the
names in this help text equal to ``BUILTIN_CDR_MAPPINGS``.
"""

progress_option = click.option(
    "--progress/--no-progress", default=None, help="Progress bar [default: on a TTY]."
)
"""``--progress/--no-progress``: ``None`` when not given (then: on when stderr is a terminal)."""


def clickhouse_options(url_flag: str = "--url") -> Callable[[F], F]:
    """``--url``/``--clickhouse`` and ``--database``: override the ClickHouse settings.

    The command receives them as ``url`` and ``database``; :func:`clickhouse_settings` merges.
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--database", default=None, help="Target database [default: from settings]."
        )(func)
        return click.option(
            url_flag,
            "url",
            default=None,
            help="chdb:///path (embedded) or https://host:8443 [default: from settings].",
        )(func)

    return decorate


def clickhouse_settings(url: str | None, database: str | None) -> ClickHouseSettings:
    """The invocation's ClickHouse settings with the command-line overrides applied."""
    base = get_settings().clickhouse
    update = {k: v for k, v in {"url": url, "database": database}.items() if v is not None}
    return base.model_copy(update=update) if update else base
