"""The directory topic's records: how a client directory is keyed and encoded on ``directory.v1``.

The topic is compacted, so each key holds the latest version of one part of the directory: a
client (key = client_id), a policy (``policy:<id>``), a calendar (``calendar:<id>``) or the staff
(``_staff``). Producers publish with :func:`directory_records`; the worker's directory feed and the
sinks' follower rebuild the directory with :func:`directory_from_records`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from schemas.base import encode, validation_reason
from schemas.calendars import BusinessCalendar
from schemas.directory import Client, ClientDirectory, StaffDirectory
from schemas.policies import SlaPolicy
from shinrai.errors import ConfigError

__all__ = [
    "CALENDAR_PREFIX",
    "POLICY_PREFIX",
    "STAFF_KEY",
    "directory_from_records",
    "directory_records",
]

STAFF_KEY = b"_staff"
POLICY_PREFIX = "policy:"
CALENDAR_PREFIX = "calendar:"


def _reserved(client_id: str) -> bool:
    return client_id.encode() == STAFF_KEY or client_id.startswith((POLICY_PREFIX, CALENDAR_PREFIX))


def directory_records(directory: ClientDirectory) -> list[tuple[bytes, bytes]]:
    """(key, JSON value) records for the compacted topic directory.v1, in a stable order."""
    records: list[tuple[bytes, bytes]] = []
    for policy in directory.policies:
        records.append((f"{POLICY_PREFIX}{policy.policy_id}".encode(), encode(policy)))
    for calendar in directory.calendars:
        records.append((f"{CALENDAR_PREFIX}{calendar.calendar_id}".encode(), encode(calendar)))
    records.append((STAFF_KEY, encode(directory.staff)))
    for client in directory.clients:
        if _reserved(client.client_id):
            # A client id equal to a reserved key would overwrite another record on compaction.
            raise ConfigError(
                f"client {client.client_id!r}: client_id collides with a reserved key"
            )
        records.append((client.client_id.encode(), encode(client)))
    return records


def directory_from_records(records: Iterable[tuple[bytes, bytes | None]]) -> ClientDirectory:
    """Rebuild a directory from topic records (latest value per key wins; None deletes a key)."""
    latest: dict[bytes, bytes] = {}
    for key, value in records:
        if value is None:
            latest.pop(key, None)
        else:
            latest[key] = value
    clients: list[Client] = []
    policies: list[SlaPolicy] = []
    calendars: list[BusinessCalendar] = []
    staff = StaffDirectory()
    for key, value in latest.items():
        name = key.decode("utf-8", errors="replace")
        try:
            if key == STAFF_KEY:
                staff = StaffDirectory.model_validate_json(value)
            elif name.startswith(POLICY_PREFIX):
                policies.append(SlaPolicy.model_validate_json(value))
            elif name.startswith(CALENDAR_PREFIX):
                calendars.append(BusinessCalendar.model_validate_json(value))
            else:
                client = Client.model_validate_json(value)
                if client.client_id != name:
                    raise ConfigError(
                        f"directory record {name!r}: key differs from "
                        f"client_id {client.client_id!r}"
                    )
                clients.append(client)
        except ValidationError as exc:
            raise ConfigError(f"directory record {name!r}: {validation_reason(exc)}") from exc
    fields: dict[str, Any] = {"clients": tuple(clients), "staff": staff}
    if policies:
        fields["policies"] = tuple(policies)
    if calendars:
        fields["calendars"] = tuple(calendars)
    try:
        return ClientDirectory(**fields)
    except ValidationError as exc:
        raise ConfigError(f"directory records: {validation_reason(exc)}") from exc
