"""The client directory: who our clients are, how to recognise them, and who we are.

Published to a compacted topic keyed by client id. Phone numbers are E.164; domains lower-case.
Resolution (free-mail addresses by full address, company domains by domain) lives in the
producers; this module only holds and validates the data.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from schemas.base import Frozen
from schemas.calendars import BusinessCalendar
from schemas.identifiers import ClientId, ShortIdentifier
from schemas.policies import SlaPolicy, schedule_problems

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _e164(values: tuple[str, ...]) -> tuple[str, ...]:
    for number in values:
        if not _E164.match(number):
            raise ValueError(f"{number!r} is not an E.164 number (+ and 7-15 digits)")
    return values


def _domains(values: tuple[str, ...]) -> tuple[str, ...]:
    for domain in values:
        if not _DOMAIN.match(domain):
            raise ValueError(f"{domain!r} is not a lower-case domain name")
    return values


def _emails(values: tuple[str, ...]) -> tuple[str, ...]:
    for address in values:
        if not _EMAIL.match(address) or address != address.lower():
            raise ValueError(f"{address!r} is not a lower-case e-mail address")
    return values


E164Numbers = Annotated[tuple[str, ...], AfterValidator(_e164)]
Domains = Annotated[tuple[str, ...], AfterValidator(_domains)]
Emails = Annotated[tuple[str, ...], AfterValidator(_emails)]


class Contact(Frozen):
    """A person at the client (or our escalation contact)."""

    name: str = Field(min_length=1, max_length=256)
    email: str | None = None
    phone: str | None = None
    role: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _emails((value,))[0]

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else _e164((value,))[0]


class Client(Frozen):
    """An organisation we serve."""

    schema_version: Literal[1] = 1
    # NFKC first, then the ASCII pattern: a full-width "ｃ０１" in a directory file is "c01".
    client_id: ClientId
    name: str = Field(min_length=1, max_length=256)
    domains: Domains = ()
    addresses: Emails = Field(default=(), description="Full addresses (free-mail contacts)")
    phone_numbers: E164Numbers = ()
    contacts: tuple[Contact, ...] = ()
    owner: str = Field(min_length=1, description="Account owner (e-mail) who gets alerts")
    escalation_contact: str | None = Field(default=None, description="Who gets breach escalations")
    policy_id: ShortIdentifier = "default"
    calendar_id: ShortIdentifier = "default"


class StaffDirectory(Frozen):
    """Who we are: our domains, numbers and people (so direction can be decided).

    ``groups`` are shared addresses (mailing lists, Google Groups, aliases that fan out to
    clients) that are neither staff nor a client, even under one of our domains: a client writing
    to one writes to us; one of us writing to one writes to the clients of that conversation.
    """

    domains: Domains = ()
    phone_numbers: E164Numbers = ()
    members: tuple[Contact, ...] = ()
    groups: Emails = Field(
        default=(), description="List / group addresses (neither staff nor client)"
    )


class ClientDirectory(Frozen):
    """Clients, our staff, and the policies and calendars clients refer to by id."""

    schema_version: Literal[1] = 1
    clients: tuple[Client, ...] = ()
    staff: StaffDirectory = Field(default_factory=StaffDirectory)
    policies: tuple[SlaPolicy, ...] = Field(default_factory=lambda: (SlaPolicy.default(),))
    calendars: tuple[BusinessCalendar, ...] = Field(
        default_factory=lambda: (BusinessCalendar(calendar_id="default", timezone="UTC"),)
    )

    @model_validator(mode="after")
    def _references(self) -> ClientDirectory:
        ids = [c.client_id for c in self.clients]
        if len(ids) != len(set(ids)):
            raise ValueError("client_id values must be unique")
        policy_ids = {p.policy_id for p in self.policies}
        calendar_ids = {c.calendar_id for c in self.calendars}
        for client in self.clients:
            if client.policy_id not in policy_ids:
                raise ValueError(
                    f"client {client.client_id}: unknown policy_id {client.policy_id!r}"
                )
            if client.calendar_id not in calendar_ids:
                raise ValueError(
                    f"client {client.client_id}: unknown calendar_id {client.calendar_id!r}"
                )
        policies = {p.policy_id: p for p in self.policies}
        calendars = {c.calendar_id: c for c in self.calendars}
        checked: set[tuple[str, str]] = set()
        for client in self.clients:
            pair = (client.policy_id, client.calendar_id)
            if pair in checked:
                continue
            checked.add(pair)
            problems = schedule_problems(policies[pair[0]], calendars[pair[1]])
            if problems:
                raise ValueError(f"client {client.client_id}: " + "; ".join(problems))
        return self


_SAFE_LOCAL = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_CLIENT_ID_MAX = 128


def derive_client_id(address: str) -> str:
    """A stable, ASCII client id for a client known by one e-mail address.

    ``Alice.Smith@Example.com`` → ``alice.smith_at_example.com``: readable, and the same address
    always gives the same id. Addresses with other characters (``+``, non-ASCII, a leading ``_``
    or ``.``) or too long for an id keep a readable slug and add ten hex digits of the address's
    SHA-256, so two addresses never share an id (a plain id ends in a top-level domain, a hashed
    one in ``-`` and hex digits). Case and surrounding blanks do not matter, as in resolution.
    The result uses only ``[a-z0-9._-]`` and starts with a letter or digit, which every
    identifier rule of the schemas accepts.
    """
    addr = address.strip().lower()
    local, _, domain = addr.rpartition("@")
    plain = f"{local}_at_{domain}"
    if _SAFE_LOCAL.match(local) and _DOMAIN.match(domain) and len(plain) <= _CLIENT_ID_MAX:
        return plain
    slug = _UNSAFE.sub("-", addr.replace("@", "_at_")).strip("-._")[:100]
    digest = hashlib.sha256(addr.encode("utf-8")).hexdigest()[:10]
    return f"{slug}-{digest}" if slug else f"address-{digest}"
