"""Directory loading (YAML, CSV), E.164 normalisation, errors naming the field, topic records."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from producers.directory_io import load_directory, parse_directory_csv, parse_directory_yaml
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory
from schemas.directory_records import directory_from_records, directory_records
from schemas.policies import SameDayOrNextMorning
from shinrai.errors import ConfigError

pytestmark = pytest.mark.unit

YAML_DOC = """
clients:
  - client_id: acme
    name: Acme KK
    domains: [ACME.co.jp]
    addresses: [Taro.Acme@Gmail.com]
    phone_numbers: ["03-1234-5678", "+1 415 555 0100"]
    owner: owner@us.example
    policy_id: fast
    calendar_id: tokyo
    contacts:
      - name: Suzuki
        email: Suzuki@Acme.co.jp
        phone: "090-1111-2222"
staff:
  domains: [Us.Example]
  phone_numbers: ["03-5555-0000"]
policies:
  - policy_id: default
  - policy_id: fast
    first_response: {rule: same_day_or_next_morning, cutoff: 14:30, next_day_by: 09:30}
calendars:
  - calendar_id: default
    timezone: UTC
  - calendar_id: tokyo
    timezone: Asia/Tokyo
    holiday_country: JP
    extra_holidays: [2025-12-29]
"""

CSV_DOC = (
    "client_id,name,domains,addresses,phone_numbers,owner,escalation_contact,policy_id,calendar_id\n"
    "acme,Acme KK,ACME.co.jp;acme-group.jp,Taro.Acme@gmail.com,03-1234-5678; 06-6123-4567,"
    "owner@us.example,boss@us.example,,\n"
    "\n"
    'globex,"Globex, Inc.",globex.com,,,owner@us.example,,default,default\n'
)


def test_yaml_loads_and_normalises() -> None:
    directory = parse_directory_yaml(YAML_DOC, default_region="JP")
    (acme,) = directory.clients
    assert acme.domains == ("acme.co.jp",)
    assert acme.addresses == ("taro.acme@gmail.com",)
    assert acme.phone_numbers == ("+81312345678", "+14155550100")
    assert acme.contacts[0].email == "suzuki@acme.co.jp"
    assert acme.contacts[0].phone == "+819011112222"
    assert directory.staff.domains == ("us.example",)
    assert directory.staff.phone_numbers == ("+81355550000",)
    fast = {p.policy_id: p for p in directory.policies}["fast"]
    # 14:30 must be a time, not the YAML 1.1 base-60 integer 870.
    assert isinstance(fast.first_response, SameDayOrNextMorning)
    assert fast.first_response.cutoff == time(14, 30)
    tokyo = {c.calendar_id: c for c in directory.calendars}["tokyo"]
    assert len(tokyo.extra_holidays) == 1


def test_yaml_unquoted_phone_is_an_error_naming_the_path() -> None:
    doc = (
        "clients:\n  - {client_id: a, name: A, owner: o@x.example, phone_numbers: [+81312345678]}\n"
    )
    with pytest.raises(ConfigError, match=r"clients\[0\]\.phone_numbers.*quoted"):
        parse_directory_yaml(doc, default_region="JP")


def test_yaml_bad_phone_and_bad_field_are_named() -> None:
    doc = "clients:\n  - {client_id: a, name: A, owner: o@x.example, phone_numbers: ['12']}\n"
    with pytest.raises(ConfigError, match=r"clients\[0\]\.phone_numbers: '12' is not a phone"):
        parse_directory_yaml(doc)
    doc = "clients:\n  - {client_id: a, name: A, owner: o@x.example, domains: ['bad domain']}\n"
    with pytest.raises(ConfigError, match=r"clients\.0\.domains"):
        parse_directory_yaml(doc)
    doc = "clients:\n  - {client_id: a, name: A, owner: o@x.example, policy_id: nope}\n"
    with pytest.raises(ConfigError, match="unknown policy_id 'nope'"):
        parse_directory_yaml(doc)
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_directory_yaml("clients: [")
    with pytest.raises(ConfigError, match="mapping"):
        parse_directory_yaml("- a\n- b\n")


def test_csv_loads_and_normalises() -> None:
    directory = parse_directory_csv(
        CSV_DOC,
        default_region="JP",
        staff_domains=["US.example"],
        staff_phone_numbers=["0355550000"],
    )
    acme, globex = directory.clients
    assert acme.client_id == "acme"
    assert acme.domains == ("acme.co.jp", "acme-group.jp")
    assert acme.addresses == ("taro.acme@gmail.com",)
    assert acme.phone_numbers == ("+81312345678", "+81661234567")
    assert acme.escalation_contact == "boss@us.example"
    assert acme.policy_id == "default"
    assert globex.name == "Globex, Inc."
    assert globex.phone_numbers == ()
    assert globex.escalation_contact is None
    assert directory.staff.domains == ("us.example",)
    assert directory.staff.phone_numbers == ("+81355550000",)
    resolver = Resolver(directory, default_region="JP")
    assert resolver.client_for_email("x@sales.acme-group.jp") == "acme"
    assert resolver.client_for_phone("06-6123-4567") == "acme"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("client_id,name\nacme,Acme\n", r"header: missing column\(s\) owner"),
        ("client_id,name,owner,colour\n", r"header: unknown column\(s\) colour"),
        (
            "client_id,name,owner,phone_numbers\na,A,o@x.example,\nb,B,o@x.example,call me\n",
            r"row 3 \(client b\): phone_numbers: 'call me' is not a phone number",
        ),
        (
            "client_id,name,owner,domains\na,A,o@x.example,not_a_domain\n",
            r"row 2 \(client a\): domains",
        ),
        ("client_id,name,owner\n,A,o@x.example\n", r"row 2: client_id"),
        ("client_id,name,owner\na,A,o@x.example,extra\n", "row 2: more cells than header columns"),
        ("client_id,name,owner\na,A,o@x.example\na,B,o@x.example\n", "unique"),
    ],
)
def test_csv_errors_name_row_and_field(doc: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_directory_csv(doc)


def test_load_directory_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(YAML_DOC, encoding="utf-8")
    (tmp_path / "d.csv").write_text("\ufeff" + CSV_DOC, encoding="utf-8")  # Excel BOM
    (tmp_path / "d.txt").write_text("", encoding="utf-8")
    assert load_directory(tmp_path / "d.yaml", default_region="JP").clients[0].client_id == "acme"
    assert len(load_directory(tmp_path / "d.csv", default_region="JP").clients) == 2
    with pytest.raises(ConfigError, match="unknown directory format"):
        load_directory(tmp_path / "d.txt")
    with pytest.raises(ConfigError, match="cannot read"):
        load_directory(tmp_path / "missing.csv")


def test_records_round_trip_and_keys() -> None:
    directory = parse_directory_yaml(YAML_DOC, default_region="JP")
    records = directory_records(directory)
    keys = {key for key, _ in records}
    assert keys == {
        b"acme",
        b"_staff",
        b"policy:default",
        b"policy:fast",
        b"calendar:default",
        b"calendar:tokyo",
    }
    assert directory_from_records(records) == directory
    # Compaction semantics: later values win, tombstones delete.
    assert directory_from_records([*records, (b"acme", None)]).clients == ()


def test_records_reject_reserved_client_ids_and_mismatched_keys() -> None:
    with pytest.raises(ConfigError, match="reserved"):
        directory_records(
            ClientDirectory(clients=(Client(client_id="_staff", name="S", owner="o@x.example"),))
        )
    good = ClientDirectory(clients=(Client(client_id="a", name="A", owner="o@x.example"),))
    value = dict(directory_records(good))[b"a"]
    with pytest.raises(ConfigError, match="key differs"):
        directory_from_records([(b"b", value)])
    with pytest.raises(ConfigError, match="directory record 'a'"):
        directory_from_records([(b"a", b"{}")])


def test_yaml_declares_group_addresses_that_are_neither_staff_nor_client() -> None:
    doc = """
clients:
  - {client_id: acme, name: Acme, domains: [acme.co.jp], owner: o@us.example}
staff:
  domains: [us.example]
  groups: [Users@Lists.US.example]
"""
    directory = parse_directory_yaml(doc, default_region="JP")
    assert directory.staff.groups == ("users@lists.us.example",)
    resolver = Resolver(directory)
    assert resolver.is_group_email("users@lists.us.example")
    # One of us writing to the group alone writes to clients, not to colleagues.
    direction, client, _ = resolver.direction_for_email(
        "tom@us.example", ["users@lists.us.example"]
    )
    assert (direction.value, client) == ("outbound", None)
