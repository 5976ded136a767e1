"""Load the client directory from YAML or CSV, and move it over the compacted topic directory.v1.

YAML layout: the ``ClientDirectory`` model as a mapping (``clients``, ``staff``, ``policies``,
``calendars``). Phone numbers may be written in national form ("03-1234-5678") and are normalised to
E.164 with the default region; they must be quoted strings (YAML would read ``+81312345678`` as an
integer and drop the plus). Times such as ``cutoff: 15:00`` are read as text, not as YAML 1.1
base-60 integers (PyYAML's default would turn them into 900).

CSV layout: a header row, then one row per client with the columns::

    client_id,name,domains,addresses,phone_numbers,owner,escalation_contact,policy_id,calendar_id

``client_id``, ``name`` and ``owner`` are required; the other columns may be missing or empty.
Multi-valued cells (domains, addresses, phone_numbers) are separated by ``;``. Empty
``policy_id``/``calendar_id`` mean ``default``. Policies and calendars are passed as objects.

An optional ``kind`` column says what a row describes (empty means ``client``)::

    kind,client_id,name,domains,addresses,phone_numbers,owner
    staff,,Support,example.com;example.co.jp,,+81312345678,
    staff,,Hana Sato,,hana.sato@gmail.com,,
    group,,users list,,users@lists.example.com,,
    ,acme,ACME,acme.com,,,owner@example.com

- ``staff``: us. Its domains, addresses (people of ours, e.g. on a free-mail address; ``name`` is
  the person) and phone numbers join the staff directory. ``client_id``, ``owner``,
  ``escalation_contact``, ``policy_id``, ``calendar_id`` must be empty.
- ``group``: list / group addresses (``addresses`` only): neither staff nor client, like the
  YAML ``staff.groups``.

The ``staff_domains`` / ``staff_phone_numbers`` arguments (``directory publish --staff-domain``)
add to the staff rows.

Client ids may be e-mail addresses (in YAML and CSV): the id becomes a safe ASCII id derived from
the address (``schemas.directory.derive_client_id``: ``alice@gmail.com`` →
``alice_at_gmail.com``), the address is added to the client's addresses, and an empty name is the
address.

Domains and addresses are lower-cased. Every problem raises ``ConfigError`` naming the row (or the
YAML path) and the field, with the reason.

Topic records: key ``<client_id>`` → Client JSON, ``_staff`` → StaffDirectory, ``policy:<id>`` →
SlaPolicy, ``calendar:<id>`` → BusinessCalendar. A ``None`` value is a tombstone (deleted key).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from producers.resolution import normalise_phone
from schemas.base import validation_reason
from schemas.calendars import BusinessCalendar
from schemas.directory import Client, ClientDirectory, StaffDirectory, derive_client_id
from schemas.policies import SlaPolicy
from shinrai.errors import ConfigError

CSV_COLUMNS = (
    "client_id",
    "name",
    "domains",
    "addresses",
    "phone_numbers",
    "owner",
    "escalation_contact",
    "policy_id",
    "calendar_id",
)
CSV_OPTIONAL_COLUMNS = ("kind",)
_REQUIRED_COLUMNS = ("client_id", "name", "owner")
CSV_KINDS = ("client", "staff", "group")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

M = TypeVar("M", bound=BaseModel)
_MULTI = ("domains", "addresses", "phone_numbers")


# -- YAML ---------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 base-60 and octal numbers ("15:00" stays a string)."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def parse_directory_yaml(
    text: str, *, default_region: str = "US", source: str = "<yaml>"
) -> ClientDirectory:
    """Parse a YAML directory document (see the module docstring for the layout)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    _normalise_tree(data, default_region, source)
    return _validate(ClientDirectory, data, source)


def _normalise_tree(data: dict[str, Any], region: str, source: str) -> None:
    """Normalise phones to E.164 and lower-case domains/addresses, in place, naming the path."""
    clients = data.get("clients") or []
    if not isinstance(clients, list):
        raise ConfigError(f"{source}: clients: must be a list")
    for i, client in enumerate(clients):
        if isinstance(client, dict):
            _normalise_party(client, f"clients[{i}]", region, source)
            _address_identity(client)
    staff = data.get("staff")
    if isinstance(staff, dict):
        _normalise_party(staff, "staff", region, source)


def _normalise_party(party: dict[str, Any], where: str, region: str, source: str) -> None:
    if "domains" in party:
        party["domains"] = _lowered(party["domains"], f"{where}.domains", source)
    for key in ("addresses", "groups"):  # groups: staff's list / group addresses
        if key in party:
            party[key] = _lowered(party[key], f"{where}.{key}", source)
    if "phone_numbers" in party:
        party["phone_numbers"] = _phones(
            party["phone_numbers"], f"{where}.phone_numbers", region, source
        )
    for key in ("contacts", "members"):
        people = party.get(key)
        if not isinstance(people, list):
            continue
        for j, person in enumerate(people):
            if not isinstance(person, dict):
                continue
            if isinstance(person.get("email"), str):
                person["email"] = person["email"].strip().lower()
            if person.get("phone") is not None:
                person["phone"] = _phones(
                    [person["phone"]], f"{where}.{key}[{j}].phone", region, source
                )[0]


def _address_identity(client: dict[str, Any]) -> None:
    """A client whose id is an e-mail address: derive a safe id, keep the address (in place)."""
    raw = client.get("client_id")
    if not isinstance(raw, str) or "@" not in raw:
        return
    address = raw.strip().lower()
    if not _ADDRESS.match(address):
        return  # not an address after all: the model's id rule reports it
    client["client_id"] = derive_client_id(address)
    addresses = client.get("addresses")
    if not isinstance(addresses, list):
        addresses = []
    if address not in addresses:
        addresses.append(address)
    client["addresses"] = addresses
    if not client.get("name"):
        client["name"] = address


def _lowered(values: Any, where: str, source: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{source}: {where}: must be a list of strings")
    return [v.strip().lower().rstrip(".") for v in values if v.strip()]


def _phones(values: Any, where: str, region: str, source: str) -> list[str]:
    if isinstance(values, str | int):
        values = [values]
    if not isinstance(values, list):
        raise ConfigError(f"{source}: {where}: must be a list of phone numbers")
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(
                f"{source}: {where}: {value!r} must be a quoted string "
                "(unquoted YAML numbers lose the leading '+' or '0')"
            )
        number = normalise_phone(value, region)
        if number is None:
            raise ConfigError(
                f"{source}: {where}: {value!r} is not a phone number (region {region})"
            )
        out.append(number)
    return out


def _validate(model: type[M], data: dict[str, Any], source: str) -> M:
    # Through JSON: the canonical models are strict, and strict JSON mode accepts ISO strings for
    # dates and times exactly as they arrive on the topic.
    try:
        return model.model_validate_json(json.dumps(data, default=_json_default))
    except ValidationError as exc:
        reason = validation_reason(exc)
        raise ConfigError(f"{source}: {reason}") from exc
    except TypeError as exc:
        raise ConfigError(f"{source}: unsupported value: {exc}") from exc


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not allowed in a directory")


# -- CSV ----------------------------------------------------------------------------------------


def parse_directory_csv(
    text: str,
    *,
    default_region: str = "US",
    staff_domains: Sequence[str] = (),
    staff_phone_numbers: Sequence[str] = (),
    policies: Sequence[SlaPolicy] | None = None,
    calendars: Sequence[BusinessCalendar] | None = None,
    source: str = "<csv>",
) -> ClientDirectory:
    """Parse the one-row-per-client CSV layout (see the module docstring)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in _REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"{source}: header: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in CSV_COLUMNS + CSV_OPTIONAL_COLUMNS]
    if unknown:
        raise ConfigError(f"{source}: header: unknown column(s) {', '.join(unknown)}")

    clients: list[Client] = []
    staff = _StaffRows(
        domains=_lowered(list(staff_domains), "staff_domains", source),
        phone_numbers=_phones(
            list(staff_phone_numbers), "staff_phone_numbers", default_region, source
        ),
    )
    for row in reader:
        where = f"{source}: row {reader.line_num}"
        if None in row:  # more cells than header columns
            raise ConfigError(f"{where}: more cells than header columns")
        cells = {k: (v or "").strip() for k, v in row.items()}
        if not any(cells.values()):
            continue  # blank line
        kind = cells.get("kind", "").lower() or "client"
        if kind not in CSV_KINDS:
            raise ConfigError(f"{where}: kind: {kind!r} is not one of {', '.join(CSV_KINDS)}")
        if kind != "client":
            staff.add_row(kind, cells, default_region, where)
            continue
        data: dict[str, Any] = {
            "client_id": cells.get("client_id", ""),
            "name": cells.get("name", ""),
            "owner": cells.get("owner", ""),
            "escalation_contact": cells.get("escalation_contact") or None,
            "policy_id": cells.get("policy_id") or "default",
            "calendar_id": cells.get("calendar_id") or "default",
        }
        for column in _MULTI:
            data[column] = [v.strip() for v in cells.get(column, "").split(";") if v.strip()]
        if data["client_id"]:
            where += f" (client {data['client_id']})"
        data["domains"] = _lowered(data["domains"], "domains", where)
        data["addresses"] = _lowered(data["addresses"], "addresses", where)
        data["phone_numbers"] = _phones(
            data["phone_numbers"], "phone_numbers", default_region, where
        )
        _address_identity(data)
        clients.append(_validate(Client, data, where))

    return _directory(clients, staff.model(source), policies, calendars, source)


def _directory(
    clients: Sequence[Client],
    staff: StaffDirectory,
    policies: Sequence[SlaPolicy] | None,
    calendars: Sequence[BusinessCalendar] | None,
    where: str,
) -> ClientDirectory:
    """The directory of these parts (``None``: the model's default policies or calendars); one
    the model refuses (a client naming an unknown policy, ...) is a ConfigError naming ``where``."""
    fields: dict[str, Any] = {"clients": tuple(clients), "staff": staff}
    if policies is not None:
        fields["policies"] = tuple(policies)
    if calendars is not None:
        fields["calendars"] = tuple(calendars)
    try:
        return ClientDirectory(**fields)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {validation_reason(exc)}") from exc


class _StaffRows:
    """The ``staff`` and ``group`` rows of a CSV directory, gathered into one StaffDirectory."""

    _NOT_FOR_STAFF = ("client_id", "owner", "escalation_contact", "policy_id", "calendar_id")

    def __init__(self, *, domains: list[str], phone_numbers: list[str]) -> None:
        self.domains = domains
        self.phone_numbers = phone_numbers
        self.members: list[dict[str, Any]] = []
        self.groups: list[str] = []

    def add_row(self, kind: str, cells: dict[str, str], region: str, where: str) -> None:
        """Add one ``staff`` or ``group`` row; a client-only cell on it is an error naming it."""
        wrong = [c for c in self._NOT_FOR_STAFF if cells.get(c)]
        if kind == "group":
            wrong += [c for c in ("domains", "phone_numbers") if cells.get(c)]
        if wrong:
            raise ConfigError(
                f"{where} (kind {kind}): {', '.join(wrong)} must be empty on a {kind} row"
            )
        addresses = _lowered(_split(cells.get("addresses", "")), "addresses", where)
        if kind == "group":
            if not addresses:
                raise ConfigError(f"{where} (kind group): addresses: give the group's address(es)")
            self.groups.extend(addresses)
            return
        self.domains.extend(_lowered(_split(cells.get("domains", "")), "domains", where))
        self.phone_numbers.extend(
            _phones(_split(cells.get("phone_numbers", "")), "phone_numbers", region, where)
        )
        name = cells.get("name", "")
        self.members.extend({"name": name or address, "email": address} for address in addresses)

    def model(self, source: str) -> StaffDirectory:
        """The StaffDirectory (duplicates dropped, first occurrence kept)."""
        data = {
            "domains": list(dict.fromkeys(self.domains)),
            "phone_numbers": list(dict.fromkeys(self.phone_numbers)),
            "members": self.members,
            "groups": list(dict.fromkeys(self.groups)),
        }
        return _validate(StaffDirectory, data, f"{source}: staff/group rows")


def _split(cell: str) -> list[str]:
    return [v.strip() for v in cell.split(";") if v.strip()]


# -- files --------------------------------------------------------------------------------------


def load_directory(
    path: Path,
    *,
    default_region: str = "US",
    staff_domains: Sequence[str] = (),
    staff_phone_numbers: Sequence[str] = (),
) -> ClientDirectory:
    """Load a directory from ``.yaml``/``.yml`` or ``.csv`` (staff options apply to CSV only)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read directory file: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        if staff_domains or staff_phone_numbers:
            raise ConfigError(f"{path}: staff options apply to CSV; put staff: in the YAML file")
        return parse_directory_yaml(text, default_region=default_region, source=str(path))
    if suffix == ".csv":
        return parse_directory_csv(
            text,
            default_region=default_region,
            staff_domains=staff_domains,
            staff_phone_numbers=staff_phone_numbers,
            source=str(path),
        )
    raise ConfigError(f"{path}: unknown directory format {suffix!r} (use .yaml, .yml or .csv)")
