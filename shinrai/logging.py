"""Structured logging: key=value console lines for people, JSON lines for machines.

No log line may hold a secret, a request body or a phone number, whichever renderer is used:

- Exceptions are rendered here, before the renderer, by :func:`format_exception`: the stack as
  file, line, function and source line, never local variables (rich's default traceback printed
  every local of every frame: the Zoom secret, request bodies, phone numbers). A log call may
  pass ``exception_messages=False`` to drop the exceptions' messages too, keeping only their
  types (the gateway does: messages of builtin exceptions echo the input that caused them).
- A redaction processor, a second line of defence, replaces every registered secret value
  (:func:`register_secrets`) and every phone-number-looking string in every value with a marker.
- Standard-library log records (uvicorn, kafka) go through the same redaction.

Request bodies cannot be recognised in general: the rule is that no code logs one (log ids,
counts and reasons), and the two defences above catch what slips through exceptions.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterator, MutableMapping
from types import TracebackType
from typing import Any, TextIO

import structlog
from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "configure",
    "format_exception",
    "get_logger",
    "processors",
    "redact",
    "register_secrets",
    "secret_values",
]

SECRET = "[redacted]"
PHONE = "[phone]"
MAX_MESSAGE = 200  # characters of an exception message kept in a log line

# A phone number: optional +, 7 to 15 digits with at most two of " ()-" between digits, not part
# of a longer word or number (hex ids, ISO dates followed by "T" and IP addresses do not match);
# and the dotted US form 415.555.0100.
_PHONE = re.compile(
    r"(?<![\w+.])\+?\d(?:[ ()\-]{0,2}\d){6,14}(?![\w.])|(?<![\w.])\d{3}\.\d{3}\.\d{4}(?![\w.])"
)
_DATE = re.compile(r"\d{4}-\d\d-\d\d[ T]?\d{0,2}$")  # "2026-12-07 09" is a date, not a phone
_SKIP_KEYS = frozenset({"timestamp"})  # written by the TimeStamper, never input

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None


def register_secrets(*values: str | None) -> None:
    """Remember secret values so that no log line ever shows them (empty values are ignored)."""
    global _secret_pattern
    with _secrets_lock:
        _secrets.update(v for v in values if v)
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


def secret_values(model: BaseModel) -> Iterator[str]:
    """Every SecretStr/SecretBytes value held by ``model`` and its nested models and tuples."""

    def walk(value: object) -> Iterator[str]:
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
        elif isinstance(value, SecretBytes):
            yield value.get_secret_value().decode("utf-8", "replace")
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                yield from walk(getattr(value, name))
        elif isinstance(value, tuple | list | frozenset | set):
            for item in value:
                yield from walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item)

    yield from walk(model)


def redact(text: str) -> str:
    """``text`` with registered secrets and phone-number-looking strings replaced by markers."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(SECRET, text)
    return _PHONE.sub(_phone_marker, text)


def _phone_marker(match: re.Match[str]) -> str:
    found = match.group()
    return found if _DATE.match(found) else PHONE


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    # Anything else is rendered by its repr: redact that text instead of trusting the object.
    return redact(repr(value))


def _redact_processor(
    logger: object, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if key not in _SKIP_KEYS:
            event_dict[key] = _redact_value(value)
    return event_dict


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, oldest first (as Python prints them)."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__
    return chain[::-1]


def format_exception(exc: BaseException, *, messages: bool = True) -> str:
    """A plain traceback of ``exc`` (and its chain) without local variables.

    Each frame is file, line, function and source line. Each exception's message is kept only
    when ``messages`` (truncated to ``MAX_MESSAGE`` characters, then redacted by the processor).
    """
    parts: list[str] = []
    chain = _chain(exc)
    for index, item in enumerate(chain):
        if index:
            direct = item.__cause__ is chain[index - 1]
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if direct
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        frames = traceback.extract_tb(item.__traceback__)  # FrameSummary without locals
        if frames:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_list(frames))
        name = type(item).__qualname__
        module = type(item).__module__
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        text = str(item) if messages else ""
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE] + "…"
        parts.append(f"{name}: {text}\n" if text else f"{name}\n")
    return "".join(parts).rstrip("\n")


def _exc_info(value: object) -> BaseException | None:
    if isinstance(value, BaseException):
        return value
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value[1]
    if value:
        return sys.exc_info()[1]
    return None


def _exception_processor(
    logger: object, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    messages = bool(event_dict.pop("exception_messages", True))
    if "exc_info" in event_dict:
        exc = _exc_info(event_dict.pop("exc_info"))
        if exc is not None:
            event_dict["exception"] = format_exception(exc, messages=messages)
    return event_dict


def processors(*, json: bool = False) -> list[structlog.typing.Processor]:
    """The processor chain, renderer last: exceptions without locals, then redaction."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        # plain_traceback only matters if an exc_info ever reached the renderer (it cannot:
        # the exception processor consumed it); never rich, whose tracebacks print locals.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _exception_processor,
        _redact_processor,
        renderer,
    ]


class RedactingFormatter(logging.Formatter):
    """A stdlib formatter whose output (message and traceback) goes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        exc = ei[1]
        return "" if exc is None else format_exception(exc)


QUIET_LIBRARIES = {"kafka": logging.WARNING}
"""Client libraries whose INFO lines are connection chatter (kafka-python logged about 40 per
``shinrai directory publish``): shown from this level only, unless ``level`` is DEBUG."""


def configure(level: str = "INFO", *, json: bool = False, stream: TextIO | None = None) -> None:
    """Configure stdlib logging and structlog once, writing to ``stream`` (stderr by default).

    Libraries in :data:`QUIET_LIBRARIES` log from their own threshold (DEBUG shows everything).
    """
    out = stream if stream is not None else sys.stderr
    structlog.configure(
        processors=processors(json=json),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    numeric = logging.getLevelName(level.upper())
    for name, floor in QUIET_LIBRARIES.items():
        quiet = isinstance(numeric, int) and numeric > logging.DEBUG
        logging.getLogger(name).setLevel(max(floor, numeric) if quiet else logging.NOTSET)


def _safe_defaults() -> None:
    """Until ``configure`` runs, structlog's own default would print rich tracebacks with
    locals: replace it by this module's chain (console renderer, stderr, not cached)."""
    if not structlog.is_configured():
        structlog.configure(
            processors=processors(json=False),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=False,
        )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger bound to ``component=name``.

    Lazy: the logger resolves structlog's configuration on first use, so module-level loggers
    created before ``configure`` still follow it.
    """
    _safe_defaults()
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=name)
    return logger
