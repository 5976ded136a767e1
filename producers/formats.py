"""Registry of input formats for ``shinrai produce``: format name -> parser function + options.

Parsers are imported lazily (only the chosen one). Each format turns the command-line options
into its parser's keyword arguments (``--tz`` is ``tz`` for Asterisk, ``floating_tz`` for ics and
the mapping's zone for cdr-csv). An option the user gave that the chosen format does not use is
an error, never silently ignored; a missing required option is an error naming it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from producers.jsonl import ParsedPolicy
from producers.parsers.base import Parsed, Rejected
from shinrai.errors import ConfigError

ProduceResult = Parsed | ParsedPolicy | Rejected
ParserFn = Callable[..., Iterator[ProduceResult]]
Options = Mapping[str, Any]  # CLI options by name: tz, mapping, window_start, window_end
Adapter = Callable[[Options], dict[str, Any]]


def _none(options: Options) -> dict[str, Any]:
    return {}


def _given_tz(options: Options) -> str | None:
    """``--tz`` when given, checked now: a bad zone must fail before a store or file is opened."""
    from producers.parsers._common import zone

    name = options.get("tz")
    if not name:
        return None
    zone(name)  # ConfigError naming the zone
    return str(name)


def _tz(options: Options) -> dict[str, Any]:
    tz = _given_tz(options)
    return {"tz": tz} if tz else {}


def _ics(options: Options) -> dict[str, Any]:
    start, end = options.get("window_start"), options.get("window_end")
    if start is None or end is None:
        # Recurring meetings are infinite; only the caller knows which stretch of time matters.
        raise ConfigError("format 'ics' needs --window-start and --window-end (recurrences)")
    if end <= start:
        raise ConfigError("--window-end must be after --window-start")
    kwargs: dict[str, Any] = {"window_start": start, "window_end": end}
    tz = _given_tz(options)
    if tz:
        kwargs["floating_tz"] = tz
    return kwargs


def _cdr_csv(options: Options) -> dict[str, Any]:
    mapping = load_cdr_mapping(options.get("mapping"))
    tz = _given_tz(options)
    if tz:
        mapping = mapping.model_copy(update={"tz": tz})
    else:
        from producers.parsers._common import zone

        zone(mapping.tz)  # a mapping file's own zone, checked before anything is opened
    return {"mapping": mapping}


BUILTIN_CDR_MAPPINGS = {"callcenter-1999": "CALLCENTER_1999"}


def load_cdr_mapping(spec: str | Path | None) -> Any:
    """A ``CdrMapping`` by built-in name (``callcenter-1999``) or from a YAML/JSON file."""
    import yaml
    from pydantic import ValidationError

    from producers.parsers import cdr_csv
    from schemas.base import validation_reason

    if spec is None:
        names = ", ".join(BUILTIN_CDR_MAPPINGS)
        raise ConfigError(f"format 'cdr-csv' needs --mapping FILE (or a built-in: {names})")
    if str(spec) in BUILTIN_CDR_MAPPINGS:
        return getattr(cdr_csv, BUILTIN_CDR_MAPPINGS[str(spec)])
    path = Path(spec)
    if not path.is_file():
        # Most likely a mistyped built-in name: say which names exist, not just "no such file".
        names = ", ".join(BUILTIN_CDR_MAPPINGS)
        raise ConfigError(
            f"--mapping {spec}: neither a built-in mapping ({names}) nor a mapping file"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"--mapping {path}: cannot read: {exc}") from exc
    try:
        return cdr_csv.CdrMapping.model_validate(data)
    except ValidationError as exc:
        reason = validation_reason(exc)
        raise ConfigError(f"--mapping {path}: {reason}") from exc


@dataclass(frozen=True, slots=True)
class Format:
    """One input format: where its parser lives, what it reads, which options it uses."""

    name: str
    module: str
    function: str
    help: str
    adapt: Adapter = _none
    uses: frozenset[str] = frozenset()  # CLI options the adapter consumes

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


_EMAIL = "producers.parsers.email"
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jsonl", "producers.jsonl", "parse_jsonl", "canonical events, one JSON per line"),
        Format("eml", _EMAIL, "parse_eml", "one .eml file or a folder of them"),
        Format("mbox", _EMAIL, "parse_mbox", "an mbox mailbox file"),
        Format("maildir", _EMAIL, "parse_maildir", "a Maildir folder"),
        Format(
            "asterisk",
            "producers.parsers.asterisk",
            "parse",
            "Asterisk Master.csv CDRs (--tz: the PBX's zone)",
            _tz,
            frozenset({"tz"}),
        ),
        Format(
            "cdr-csv",
            "producers.parsers.cdr_csv",
            "parse",
            "call CSV/TSV with a column --mapping (file or built-in name)",
            _cdr_csv,
            frozenset({"mapping", "tz"}),
        ),
        Format("twilio", "producers.parsers.twilio", "parse", "Twilio Call resources (JSON)"),
        Format(
            "ics",
            "producers.parsers.ics",
            "parse",
            "iCalendar meetings in --window-start..--window-end (--tz: floating times)",
            _ics,
            frozenset({"window_start", "window_end", "tz"}),
        ),
        Format("zoom", "producers.parsers.zoom", "parse", "Zoom meeting webhook payloads (JSON)"),
        Format("graph", "producers.parsers.graph", "parse", "Microsoft Graph events/messages JSON"),
    )
}


def get_format(name: str) -> Format:
    """The format called ``name``; a ConfigError listing the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


def _accepted(parser: ParserFn) -> set[str] | None:
    """Keyword options ``parser`` takes (None when it takes ``**kwargs``)."""
    params = inspect.signature(parser).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def prepare_parser(
    fmt: Format, options: Options
) -> Callable[[Path, object], Iterator[ProduceResult]]:
    """Check the CLI ``options`` against ``fmt`` and bind them: ``parse(path, resolver)``.

    Every argument error (an option the format does not use, a missing or unknown mapping, a
    bad window) is raised here, before anything is read or created, so a command can check its
    arguments before it opens a store or a connection. Options that are None were not given.
    """
    given = {k for k, v in options.items() if v is not None}
    unused = sorted(given - fmt.uses)
    if unused:
        names = ", ".join("--" + name.replace("_", "-") for name in unused)
        raise ConfigError(f"format {fmt.name!r} does not use {names}")
    parser = fmt.load()
    kwargs = fmt.adapt(options)
    accepted = _accepted(parser)
    if accepted is not None and not set(kwargs) <= accepted:
        # A parser changed its signature under us: say so instead of a TypeError mid-run.
        raise ConfigError(
            f"format {fmt.name!r}: parser does not take {sorted(set(kwargs) - accepted)}"
        )

    def parse(path: Path, resolver: object) -> Iterator[ProduceResult]:
        return parser(path, resolver, **kwargs)

    return parse


def open_parser(
    fmt: Format, path: Path, resolver: object, options: Options
) -> Iterator[ProduceResult]:
    """Start parsing ``path`` with the CLI ``options`` (see :func:`prepare_parser`)."""
    return prepare_parser(fmt, options)(path, resolver)
