"""CSV directories declare staff and groups (``kind`` rows); client ids may be e-mail addresses."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from producers.directory_io import load_directory, parse_directory_csv, parse_directory_yaml
from producers.resolution import Resolver
from schemas.directory import Client, derive_client_id
from schemas.directory_records import directory_from_records, directory_records
from shinrai.cli import main
from shinrai.errors import ConfigError

pytestmark = pytest.mark.unit

CSV = """kind,client_id,name,domains,addresses,phone_numbers,owner
staff,,Support,Example.com; example.co.jp,,03-1234-5678,
staff,,Hana Sato,,Hana.Sato@gmail.com,,
group,,users list,,users@lists.example.com;dev@lists.example.com,,
,acme,ACME,acme.com,,,owner@example.com
client,Alice@Gmail.com,,,,,owner@example.com
"""


def test_kind_rows_declare_staff_domains_addresses_numbers_and_groups() -> None:
    directory = parse_directory_csv(CSV, default_region="JP")
    staff = directory.staff
    assert staff.domains == ("example.com", "example.co.jp")
    assert staff.phone_numbers == ("+81312345678",)
    assert [(m.name, m.email) for m in staff.members] == [("Hana Sato", "hana.sato@gmail.com")]
    assert staff.groups == ("users@lists.example.com", "dev@lists.example.com")
    assert [c.client_id for c in directory.clients] == ["acme", "alice_at_gmail.com"]

    resolver = Resolver(directory, default_region="JP")
    assert resolver.is_staff_email("hana.sato@gmail.com")  # a colleague on free mail
    assert resolver.is_staff_email("tom@example.co.jp")
    assert resolver.is_staff_phone("+81312345678")
    assert resolver.is_group_email("users@lists.example.com")
    assert resolver.client_for_email("alice@gmail.com") == "alice_at_gmail.com"
    # Staff writing to the list only is outbound (to that conversation's clients), not internal.
    direction, _, _ = resolver.direction_for_email(
        "hana.sato@gmail.com", ["users@lists.example.com"]
    )
    assert direction.value == "outbound"


def test_csv_kind_rows_equal_the_same_yaml_directory() -> None:
    yaml_doc = """
clients:
  - {client_id: acme, name: ACME, domains: [acme.com], owner: owner@example.com}
  - {client_id: alice@gmail.com, owner: owner@example.com}
staff:
  domains: [example.com, example.co.jp]
  phone_numbers: ["03-1234-5678"]
  members: [{name: Hana Sato, email: hana.sato@gmail.com}]
  groups: [users@lists.example.com, dev@lists.example.com]
"""
    assert parse_directory_csv(CSV, default_region="JP") == parse_directory_yaml(
        yaml_doc, default_region="JP"
    )


def test_staff_options_add_to_the_staff_rows(tmp_path: Path) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(CSV)
    directory = load_directory(
        path, default_region="JP", staff_domains=["ours.example", "example.com"]
    )
    assert directory.staff.domains == ("ours.example", "example.com", "example.co.jp")


def test_a_csv_without_kind_column_still_loads() -> None:
    doc = "client_id,name,owner\nacme,ACME,o@example.com\n"
    directory = parse_directory_csv(doc, staff_domains=["example.com"])
    assert [c.client_id for c in directory.clients] == ["acme"]
    assert directory.staff.domains == ("example.com",)
    assert directory.staff.groups == ()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("boss,,X,,,,", r"row 2: kind: 'boss' is not one of client, staff, group"),
        ("staff,acme,X,example.com,,,", r"row 2 \(kind staff\): client_id must be empty"),
        ("staff,,X,,,,o@example.com", r"owner must be empty"),
        ("group,,L,lists.example.com,l@lists.example.com,,", r"domains must be empty"),
        ("group,,L,,,,", r"addresses: give the group's address"),
        ("staff,,X,not a domain,,,", r"domains"),
        ("staff,,X,,,12,", r"phone_numbers: '12' is not a phone number"),
        ("group,,L,,not-an-address,,", r"not-an-address"),
    ],
)
def test_bad_kind_rows_name_the_row_and_the_field(row: str, message: str) -> None:
    doc = f"kind,client_id,name,domains,addresses,phone_numbers,owner\n{row}\n"
    with pytest.raises(ConfigError, match=message):
        parse_directory_csv(doc, source="d.csv")


def test_email_client_id_keeps_the_address_and_resolves_to_the_derived_id() -> None:
    doc = (
        "client_id,name,addresses,owner\n"
        "Bob+Support@Mail.example,Bob,bob@other.example,o@example.com\n"
        "carol@mail.example,,carol@mail.example,o@example.com\n"
    )
    directory = parse_directory_csv(doc)
    bob, carol = directory.clients
    assert bob.client_id == derive_client_id("bob+support@mail.example")
    assert bob.addresses == ("bob@other.example", "bob+support@mail.example")
    assert bob.name == "Bob"
    assert (carol.client_id, carol.name) == ("carol_at_mail.example", "carol@mail.example")
    assert carol.addresses == ("carol@mail.example",)  # not twice
    resolver = Resolver(directory)
    assert resolver.client_for_email("Bob+Support@mail.example") == bob.client_id
    # Published and read back, the derived ids are stable (no second derivation).
    assert directory_from_records(directory_records(directory)) == directory


def test_two_addresses_deriving_one_id_is_an_error() -> None:
    doc = "client_id,name,owner\nann@x.example,A,o@example.com\nAnn@X.example,B,o@example.com\n"
    with pytest.raises(ConfigError, match="client_id values must be unique"):
        parse_directory_csv(doc)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("alice@gmail.com", "alice_at_gmail.com"),
        ("Alice.Smith@Example.COM", "alice.smith_at_example.com"),
        ("a_b-c@sub.example.org", "a_b-c_at_sub.example.org"),
    ],
)
def test_plain_addresses_derive_readable_ids(address: str, expected: str) -> None:
    assert derive_client_id(address) == expected


_SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_local = st.text(
    string.ascii_letters + string.digits + "._+-=!#'" + "éü語", min_size=1, max_size=70
)
_domain = st.from_regex(r"\A[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}\.[a-z]{2,6}\Z")


@given(local=_local, domain=_domain, other_local=_local)
def test_derived_ids_are_safe_stable_and_distinct(
    local: str, domain: str, other_local: str
) -> None:
    address = f"{local}@{domain}"
    derived = derive_client_id(address)
    assert _SAFE_ID.match(derived), derived
    assert len(derived) <= 128
    assert derived.isascii()
    assert derive_client_id(f"  {address.upper()} ") == derive_client_id(address.lower())
    Client(client_id=derived, name="n", owner="o@example.com")  # the model accepts it
    other = f"{other_local}@{domain}"
    if other.lower() != address.lower():
        assert derive_client_id(other) != derived


def test_directory_help_documents_the_csv_kinds() -> None:
    result = CliRunner().invoke(main, ["directory", "--help"])
    assert result.exit_code == 0
    for words in ("kind", "staff", "group", "staff.groups", "alice_at_gmail.com"):
        assert words in result.output
