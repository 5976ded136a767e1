"""The client directory: who our clients are, how to recognise them, and who we are.

Published to a compacted topic keyed by client id. Phone numbers are E.164; domains lower-case.
Resolution (free-mail addresses by full address, company domains by domain) lives in the
producers; this module only holds and validates the data.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from schemas.base import Frozen
from schemas.calendars import BusinessCalendar
from schemas.identifiers import ClientId, ShortIdentifier
from schemas.policies import SlaPolicy

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
    """Who we are: our domains, numbers and people (so direction can be decided)."""

    domains: Domains = ()
    phone_numbers: E164Numbers = ()
    members: tuple[Contact, ...] = ()


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
        return self
