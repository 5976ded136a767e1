"""Base model configuration and the JSON codec every producer and consumer uses.

Models are frozen (immutable facts), strict (no silent coercion: "12" is not 12), forbid unknown
fields (a typo in a producer is an error, not a silently dropped field) and carry a
``schema_version`` so consumers can tell which contract a payload follows. JSON only, never pickle.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shinrai.errors import ValidationFailed

SCHEMA_VERSION = 1

M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    """Immutable, strict model; the base of every canonical Shinrai model."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", ser_json_timedelta="float")


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, reason) pairs from a pydantic error, e.g. ``("occurred_at", "Input should ...")``."""
    return [(_loc(err["loc"]), err["msg"]) for err in exc.errors(include_url=False)]


def validation_reason(exc: ValidationError) -> str:
    """Every (field, reason) pair of a pydantic error on one line: ``field: reason; ...``."""
    return "; ".join(f"{field}: {why}" for field, why in validation_errors(exc))


def decode(model: type[M], raw: bytes | str) -> M:
    """Parse JSON bytes into ``model``; raise ValidationFailed naming each bad field and the reason.

    The original bytes ride along on the error so the caller can dead-letter them unchanged.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        errors = validation_errors(exc)
        reason = "; ".join(f"{f}: {r}" for f, r in errors)
        raise ValidationFailed(
            f"invalid {model.__name__}: {reason}", errors=errors, raw=data
        ) from exc


def encode(model: BaseModel) -> bytes:
    """Serialise a model to compact JSON bytes (the wire format on every topic)."""
    return model.model_dump_json().encode()


def to_jsonable(model: BaseModel) -> dict[str, Any]:
    """A plain-JSON dict of ``model`` (datetimes as ISO strings)."""
    return model.model_dump(mode="json")
