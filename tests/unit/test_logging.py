"""shinrai.logging: exceptions without locals, redaction of secrets and phone numbers, both renderers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from pydantic import BaseModel, SecretStr

from shinrai.logging import (
    PHONE,
    SECRET,
    RedactingFormatter,
    format_exception,
    processors,
    redact,
    register_secrets,
    secret_values,
)

pytestmark = pytest.mark.unit

SECRET_VALUE = "unit-logging-secret-5f1c9a"


@pytest.fixture
def lines() -> Iterator[dict[str, io.StringIO]]:
    """Log through the real chain with each renderer into its own buffer (not cached)."""
    previous = structlog.get_config()
    buffers = {"console": io.StringIO(), "json": io.StringIO()}
    yield buffers
    structlog.configure(**previous)


def _log_with(json_renderer: bool, out: io.StringIO) -> structlog.typing.FilteringBoundLogger:
    structlog.configure(
        processors=processors(json=json_renderer),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component="test")
    return logger


def _fail(secret: str, body: bytes, phone: str) -> None:
    # Locals hold the secret, the body and a number, like the gateway's endpoint frames.
    raise ValueError(f"cannot use {phone}")


@pytest.mark.parametrize("renderer", ["console", "json"])
def test_exceptions_have_no_locals_and_no_secret_or_phone(
    lines: dict[str, io.StringIO], renderer: str
) -> None:
    register_secrets(SECRET_VALUE)
    log = _log_with(renderer == "json", lines[renderer])
    body = b'{"payload": "the-whole-request-body"}'
    try:
        _fail(SECRET_VALUE, body, "+14155550100")
    except ValueError:
        log.exception("failed", hint=f"token {SECRET_VALUE} from +1 415 555 0100")
    text = lines[renderer].getvalue()
    assert "Traceback (most recent call last)" in text
    assert "_fail" in text  # the frames are there ...
    assert "the-whole-request-body" not in text  # ... their locals are not
    assert SECRET_VALUE not in text
    assert "+14155550100" not in text
    assert "415 555 0100" not in text
    assert SECRET in text
    assert PHONE in text
    if renderer == "json":
        record = json.loads(text)
        assert record["exception"].endswith(f"ValueError: cannot use {PHONE}")


def test_exception_messages_can_be_left_out() -> None:
    with pytest.raises(ValueError, match="call me") as caught:
        _fail("s", b"b", "call me")
    assert format_exception(caught.value, messages=False).endswith("\nValueError")
    assert format_exception(caught.value).endswith("ValueError: cannot use call me")


def test_chained_exceptions_are_all_shown_and_long_messages_truncated() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("x" * 1000) from inner
    except RuntimeError as exc:
        text = format_exception(exc)
    assert "KeyError: 'inner'" in text
    assert "direct cause" in text
    assert "x" * 200 + "…" in text
    assert "x" * 201 not in text


@pytest.mark.parametrize(
    "number",
    ["+14155550100", "(415) 555-0100", "415-555-0100", "415.555.0100", "+81 3-1234-5678"],
)
def test_phone_numbers_are_redacted(number: str) -> None:
    assert number not in redact(f"from {number} today")
    assert PHONE in redact(f"from {number} today")


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07 09:42:08",
        "2026-12-07T09:42:08.123456Z",
        "127.0.0.1:9092",
        "request 4812934abc0d1e2f",
        "offset 12345",
        "Mon, 01 Apr 2024 09:10:00 +0000",
    ],
)
def test_dates_addresses_and_ids_are_not_phone_numbers(text: str) -> None:
    assert redact(text) == text


def test_secret_values_are_found_in_nested_settings() -> None:
    class Inner(BaseModel):
        token: SecretStr

    class Outer(BaseModel):
        inner: Inner
        tokens: tuple[SecretStr, ...]
        plain: str = "not-a-secret"

    found = set(secret_values(Outer(inner=Inner(token=SecretStr("a1")), tokens=(SecretStr("b2"),))))
    assert found == {"a1", "b2"}


def test_stdlib_records_are_redacted_too() -> None:
    register_secrets(SECRET_VALUE)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(message)s"))
    logger = logging.getLogger("tests.unit.test_logging")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            _fail(SECRET_VALUE, b"body", "+14155550100")
        except ValueError:
            logger.exception("uvicorn says %s", SECRET_VALUE)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert SECRET_VALUE not in text
    assert "+14155550100" not in text
    assert "Traceback" in text


def test_settings_register_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from shinrai.settings import Settings

    monkeypatch.setenv("SHINRAI_ALERTS__SIGNING_SECRET", "alert-signing-secret-77f3")
    monkeypatch.setenv("SHINRAI_KAFKA__SASL_PASSWORD", "sasl-password-9c2e")
    Settings()
    assert redact("alert-signing-secret-77f3 sasl-password-9c2e") == f"{SECRET} {SECRET}"


@pytest.mark.parametrize(("level", "chatter_shown"), [("INFO", False), ("DEBUG", True)])
def test_kafka_python_info_chatter_is_quiet_unless_debugging(
    lines: dict[str, io.StringIO], level: str, chatter_shown: bool
) -> None:
    from shinrai.logging import configure

    root = logging.getLogger()
    root_level = root.level
    try:
        configure(level, stream=lines["console"])
        root.setLevel(level)  # what basicConfig does outside pytest (its handlers are installed)
        client = logging.getLogger("kafka.conn")
        assert client.isEnabledFor(logging.INFO) is chatter_shown
        assert client.isEnabledFor(logging.WARNING)
        assert logging.getLogger("shinrai.worker").isEnabledFor(logging.INFO)
        assert logging.getLogger("aiokafka").isEnabledFor(logging.INFO)
    finally:
        logging.getLogger("kafka").setLevel(logging.NOTSET)
        root.setLevel(root_level)
