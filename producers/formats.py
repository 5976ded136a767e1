"""Registry of input formats for ``shinrai produce``: format name -> parser function.

Parsers are imported lazily (only the chosen one), and each receives only the options its
signature accepts, so a parser can grow an option without this registry changing. An option the
user gave that the chosen parser does not take is an error, not silently ignored.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from producers.jsonl import ParsedPolicy
from schemas.parsers.base import Parsed, Rejected
from shinrai.errors import ConfigError

ProduceResult = Parsed | ParsedPolicy | Rejected
ParserFn = Callable[..., Iterator[ProduceResult]]


@dataclass(frozen=True, slots=True)
class Format:
    """One input format: where its parser lives and what it reads."""

    name: str
    module: str
    function: str
    help: str
    fixed_options: tuple[tuple[str, Any], ...] = ()  # options this format always passes

    def load(self) -> ParserFn:
        """Import the parser; a missing module or function is a ConfigError naming both."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise ConfigError(
                f"format {self.name!r}: parser module {self.module} is not available"
            ) from exc
        parser = getattr(module, self.function, None)
        if not callable(parser):
            raise ConfigError(f"format {self.name!r}: {self.module}.{self.function} not found")
        return cast(ParserFn, parser)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jsonl", "producers.jsonl", "parse_jsonl", "canonical events, one JSON per line"),
        Format("eml", "schemas.parsers.email", "parse_eml", "one .eml file or a folder of them"),
        Format("mbox", "schemas.parsers.email", "parse_mbox", "an mbox mailbox file"),
        Format("maildir", "schemas.parsers.email", "parse_maildir", "a Maildir folder"),
        Format(
            "asterisk", "schemas.parsers.asterisk", "parse_asterisk", "Asterisk Master.csv CDRs"
        ),
        Format(
            "cdr-csv", "schemas.parsers.cdr_csv", "parse_cdr_csv", "generic call CSV (--mapping)"
        ),
        Format("twilio", "schemas.parsers.twilio", "parse_twilio", "Twilio Call resources (JSON)"),
        Format("ics", "schemas.parsers.ics", "parse_ics", "iCalendar .ics meetings"),
        Format("zoom", "schemas.parsers.zoom", "parse_zoom", "Zoom webhook payloads (JSON)"),
        Format(
            "graph", "schemas.parsers.graph", "parse_graph", "Microsoft Graph events/messages/calls"
        ),
    )
}


def get_format(name: str) -> Format:
    """The format called ``name``; a ConfigError listing the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


def accepted_options(parser: ParserFn) -> set[str] | None:
    """Keyword options ``parser`` takes (None when it takes ``**kwargs``: anything goes)."""
    params = inspect.signature(parser).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def open_parser(
    fmt: Format, path: Path, resolver: object, options: Mapping[str, Any]
) -> Iterator[ProduceResult]:
    """Start parsing ``path``; options that are None are not passed.

    A given option the parser does not take is a ConfigError (e.g. ``--tz`` for a format whose
    timestamps always carry their offset), so the user is never left believing it applied.
    """
    parser = fmt.load()
    given = {k: v for k, v in options.items() if v is not None}
    accepted = accepted_options(parser)
    if accepted is not None:
        unknown = sorted(set(given) - accepted)
        if unknown:
            names = ", ".join("--" + name.replace("_", "-") for name in unknown)
            raise ConfigError(f"format {fmt.name!r} does not take {names}")
    kwargs = {**dict(fmt.fixed_options), **given}
    return parser(path, resolver, **kwargs)
