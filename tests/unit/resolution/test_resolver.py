"""Participant resolution: free mail vs company domains, subdomains, phones, staff, direction."""

from __future__ import annotations

import pytest

from producers.resolution import Resolver, normalise_phone
from schemas.directory import Client, ClientDirectory, Contact, StaffDirectory
from schemas.events import Direction

pytestmark = pytest.mark.unit


@pytest.fixture
def directory() -> ClientDirectory:
    return ClientDirectory(
        clients=(
            Client(
                client_id="acme",
                name="Acme KK",
                domains=("acme.co.jp",),
                addresses=("taro.acme@gmail.com",),
                phone_numbers=("+81312345678",),
                owner="owner@us.example",
            ),
            Client(
                client_id="globex",
                name="Globex",
                domains=("globex.com",),
                contacts=(
                    Contact(name="Hanako", email="hanako@docomo.ne.jp", phone="+819011112222"),
                ),
                owner="owner@us.example",
            ),
            # Two clients listing the same domain: ambiguous, must never resolve.
            Client(
                client_id="dup1", name="Dup 1", domains=("shared.example",), owner="o@us.example"
            ),
            Client(
                client_id="dup2", name="Dup 2", domains=("shared.example",), owner="o@us.example"
            ),
        ),
        staff=StaffDirectory(
            domains=("us.example",),
            phone_numbers=("+81355550000",),
            members=(Contact(name="Freelancer", email="helper@gmail.com"),),
        ),
    )


@pytest.fixture
def resolver(directory: ClientDirectory) -> Resolver:
    return Resolver(directory, default_region="JP")


def test_company_domain_and_subdomain_resolve(resolver: Resolver) -> None:
    assert resolver.client_for_email("suzuki@acme.co.jp") == "acme"
    assert resolver.client_for_email("Suzuki <SUZUKI@Mail.Acme.CO.JP>") == "acme"
    # A look-alike domain is not a subdomain.
    assert resolver.client_for_email("x@notacme.co.jp") is None
    assert resolver.client_for_email("x@acme.co.jp.evil.example") is None


def test_free_mail_resolves_by_full_address_only(resolver: Resolver) -> None:
    assert resolver.client_for_email("taro.acme@gmail.com") == "acme"
    assert resolver.client_for_email("someone.else@gmail.com") is None
    assert resolver.client_for_email("hanako@docomo.ne.jp") == "globex"
    assert resolver.client_for_email("other@docomo.ne.jp") is None


def test_free_mail_wildcards(resolver: Resolver) -> None:
    assert resolver.is_free_mail("yahoo.co.uk")
    assert resolver.is_free_mail("yahoo.co.jp")
    assert resolver.is_free_mail("hotmail.fr")
    assert not resolver.is_free_mail("acme.co.jp")
    assert not resolver.is_free_mail("notyahoo.com")
    # The wildcard stands for a public suffix only, not for someone else's domain.
    assert not resolver.is_free_mail("live.acme.co.jp")
    assert not resolver.is_free_mail("outlook.acme.com")
    assert resolver.is_free_mail("outlook.com.br")


def test_free_mail_domain_listed_on_a_client_still_does_not_resolve_by_domain() -> None:
    # Misconfiguration guard: even if someone lists gmail.com as a client domain, random gmail
    # users must not be attributed to that client.
    directory = ClientDirectory(
        clients=(Client(client_id="c", name="C", domains=("gmail.com",), owner="o@us.example"),)
    )
    assert Resolver(directory).client_for_email("anyone@gmail.com") is None
    assert Resolver(directory).client_for_email("anyone@eu.gmail.com") is None


def test_unknown_and_ambiguous_stay_none(resolver: Resolver) -> None:
    assert resolver.client_for_email("who@unknown.example") is None
    assert resolver.client_for_email("a@shared.example") is None
    assert resolver.client_for_email("not an address") is None
    assert resolver.client_for_email("") is None


def test_phone_normalisation_and_lookup(resolver: Resolver) -> None:
    assert resolver.normalise_phone("03-1234-5678") == "+81312345678"
    assert resolver.normalise_phone("(415) 555-0100", region="US") == "+14155550100"
    assert resolver.normalise_phone("tel:+81-3-1234-5678") == "+81312345678"
    assert resolver.normalise_phone("sip:0312345678@pbx.local") == "+81312345678"
    assert resolver.normalise_phone("101") is None  # an internal extension, not a number
    assert resolver.normalise_phone("hello") is None
    assert resolver.client_for_phone("03 1234 5678") == "acme"
    assert resolver.client_for_phone("+81 90-1111-2222") == "globex"
    assert resolver.client_for_phone("03-9999-9999") is None
    assert normalise_phone("0312345678", "US") != "+81312345678"  # region matters


def test_staff(resolver: Resolver) -> None:
    assert resolver.is_staff_email("me@us.example")
    assert resolver.is_staff_email("list@lists.us.example")
    assert resolver.is_staff_email("helper@gmail.com")  # a listed member on free mail
    assert not resolver.is_staff_email("x@gmail.com")
    assert not resolver.is_staff_email("me@acme.co.jp")
    assert resolver.is_staff_phone("03-5555-0000")
    assert not resolver.is_staff_phone("03-1234-5678")


@pytest.mark.parametrize(
    ("sender", "recipients", "expected"),
    [
        ("suzuki@acme.co.jp", ["me@us.example"], (Direction.INBOUND, "acme", "suzuki@acme.co.jp")),
        (
            "me@us.example",
            ["boss@us.example", "Suzuki <suzuki@acme.co.jp>"],
            (Direction.OUTBOUND, "acme", "suzuki@acme.co.jp"),
        ),
        ("me@us.example", ["boss@us.example"], (Direction.INTERNAL, None, None)),
        (
            "me@us.example",
            ["stranger@unknown.example"],
            (Direction.UNKNOWN, None, "stranger@unknown.example"),
        ),
        (
            "stranger@unknown.example",
            ["me@us.example"],
            (Direction.UNKNOWN, None, "stranger@unknown.example"),
        ),
        # client to client (no staff recipient): kept, but neither inbound nor outbound
        (
            "suzuki@acme.co.jp",
            ["x@globex.com"],
            (Direction.UNKNOWN, "acme", "suzuki@acme.co.jp"),
        ),
        ("garbage", ["me@us.example"], (Direction.UNKNOWN, None, None)),
    ],
)
def test_direction(
    resolver: Resolver,
    sender: str,
    recipients: list[str],
    expected: tuple[Direction, str | None, str | None],
) -> None:
    assert resolver.direction_for_email(sender, recipients) == expected
