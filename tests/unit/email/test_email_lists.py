"""Replies to lists and groups, many clients in one conversation, message ids (issue 13 1-3, 9)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.core import Engine
from engine.replay import replay
from producers.parsers.base import Parsed
from producers.parsers.email import parse_eml, parse_mbox
from producers.parsers.email_headers import digest, message_ids
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory, StaffDirectory
from schemas.events import Direction, Flag, InteractionEvent
from schemas.facts import FactKind

pytestmark = pytest.mark.unit

LIST = "users@lists.us.example"  # a list under our own domain
LIST_HEADERS = (
    "List-Id: Users <users.lists.us.example>",
    f"List-Post: <mailto:{LIST}>",
    "Precedence: list",
)


def client(cid: str, *addresses: str) -> Client:
    return Client(client_id=cid, name=cid, addresses=addresses, owner="owner@us.example")


@pytest.fixture
def resolver() -> Resolver:
    directory = ClientDirectory(
        clients=(
            client("alice", "alice@gmail.com"),
            client("bob", "bob@gmail.com"),
            client("carol", "carol@gmail.com"),
        ),
        staff=StaffDirectory(domains=("us.example",), groups=("help@us.example",)),
    )
    return Resolver(directory)


def message(
    sender: str,
    to: str,
    mid: str,
    minutes: int,
    *headers: str,
    cc: str | None = None,
) -> str:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        *([f"Cc: {cc}"] if cc else []),
        "Subject: help",
        f"Date: Tue, 04 Mar 2025 10:{minutes:02d}:00 +0000",
        f"Message-ID: <{mid}>",
        *headers,
    ]
    return "\r\n".join(lines) + "\r\n\r\nbody\r\n"


def parse_folder(tmp_path: Path, resolver: Resolver, *messages: str) -> list[InteractionEvent]:
    for number, text in enumerate(messages):
        (tmp_path / f"{number:03d}.eml").write_text(text)
    results = list(parse_eml(tmp_path, resolver))
    assert all(isinstance(r, Parsed) for r in results), results
    return [r.event for r in results if isinstance(r, Parsed)]


# -- direction with lists and groups -------------------------------------------------------------


def test_a_list_under_our_domain_is_neither_staff_nor_client(resolver: Resolver) -> None:
    lists = [LIST]
    assert resolver.direction_for_email("alice@gmail.com", [LIST], lists) == (
        Direction.INBOUND,
        "alice",
        "alice@gmail.com",
    )
    # Staff writing only to the list: outbound, to the clients of the conversation (not internal).
    assert resolver.direction_for_email("tom@us.example", [LIST], lists) == (
        Direction.OUTBOUND,
        None,
        None,
    )
    # Without the list headers the same address is one of ours: internal, as before.
    assert resolver.direction_for_email("tom@us.example", [LIST])[0] is Direction.INTERNAL
    # A group declared in the directory behaves like a list without any header.
    assert resolver.direction_for_email("tom@us.example", ["help@us.example"])[:2] == (
        Direction.OUTBOUND,
        None,
    )
    assert resolver.direction_for_email("bob@gmail.com", ["help@us.example"])[0] is (
        Direction.INBOUND
    )


def test_clients_reached_lists_every_client_once_in_order(resolver: Resolver) -> None:
    reached = resolver.clients_reached(
        ["tom@us.example", "bob@gmail.com", LIST, "alice@gmail.com", "Bob <bob@gmail.com>"], [LIST]
    )
    assert reached == [("bob", "bob@gmail.com"), ("alice", "alice@gmail.com")]


# -- one event per client reached ----------------------------------------------------------------


def test_a_staff_reply_to_the_list_reaches_each_client_who_wrote_there(
    tmp_path: Path, resolver: Resolver
) -> None:
    events = parse_folder(
        tmp_path,
        resolver,
        message("alice@gmail.com", LIST, "q@gmail.com", 0, *LIST_HEADERS),
        message("bob@gmail.com", LIST, "b@gmail.com", 5, "In-Reply-To: q@gmail.com", *LIST_HEADERS),
        message(
            "tom@us.example", LIST, "a@us.example", 30, "In-Reply-To: <b@gmail.com>", *LIST_HEADERS
        ),
        message("carol@gmail.com", LIST, "other@gmail.com", 40, *LIST_HEADERS),  # another thread
    )
    staff = [e for e in events if e.direction is Direction.OUTBOUND]
    assert {e.client_id for e in staff} == {"alice", "bob"}  # not carol: not in that conversation
    assert len({e.event_id for e in staff}) == 2
    assert all(e.event_id.startswith(f"email:{digest('a@us.example')}") for e in staff)
    assert {e.counterpart for e in staff} == {"alice@gmail.com", "bob@gmail.com"}
    assert all(Flag.AUTO_REPLY not in e.flags for e in events)  # item 9: Precedence: list
    # Through the engine: both clients' obligations are fulfilled by the one reply.
    facts = list(replay(events, Engine(allowed_lateness=timedelta(0))))
    fulfilled = {f.client_id: f for f in facts if f.kind is FactKind.FULFILLED}
    assert set(fulfilled) == {"alice", "bob"}
    assert fulfilled["alice"].calendar_seconds == 30 * 60.0
    assert fulfilled["bob"].calendar_seconds == 25 * 60.0
    assert [f.client_id for f in facts if f.kind is FactKind.OBLIGATION_OPENED] == [
        "alice",
        "bob",
        "carol",
    ]


def test_a_staff_reply_fulfils_every_client_in_to_and_cc(
    tmp_path: Path, resolver: Resolver
) -> None:
    events = parse_folder(
        tmp_path,
        resolver,
        message("alice@gmail.com", "support@us.example", "q@gmail.com", 0, cc="bob@gmail.com"),
        message(
            "bob@gmail.com", "support@us.example", "b@gmail.com", 1, "References: <q@gmail.com>"
        ),
        message(
            "tom@us.example",
            "alice@gmail.com",
            "a@us.example",
            20,
            "References: <q@gmail.com> <b@gmail.com>",
            cc="bob@gmail.com, support@us.example",
        ),
    )
    staff = [e for e in events if e.direction is Direction.OUTBOUND]
    assert (
        [(e.client_id, e.event_id) for e in staff]
        == [
            ("alice", f"email:{digest('a@us.example')}"),  # the first client keeps the message's id
            ("bob", f"email:{digest('a@us.example')}:{digest('bob')[:16]}"),
        ]
    )
    facts = list(replay(events, Engine(allowed_lateness=timedelta(0))))
    assert sorted(f.client_id for f in facts if f.kind is FactKind.FULFILLED) == ["alice", "bob"]


def test_ids_are_hashed_and_chains_completed_from_the_input(
    tmp_path: Path, resolver: Resolver
) -> None:
    events = parse_folder(
        tmp_path,
        resolver,
        message("alice@gmail.com", LIST, "q@Gmail.COM", 0, *LIST_HEADERS),
        # A web-archive post: a bare id naming its direct parent only.
        message("bob@gmail.com", LIST, "b@gmail.com", 5, "In-Reply-To: q@gmail.com", *LIST_HEADERS),
        message(
            "carol@gmail.com", LIST, "c@gmail.com", 9, "In-Reply-To: <b@gmail.com>", *LIST_HEADERS
        ),
    )
    carol = events[2]
    assert carol.schema_version == 2
    assert carol.message_key == digest("c@gmail.com")
    # Carol named b only; the input knows b answers q: her event carries the whole chain.
    assert carol.parent_keys == (digest("q@gmail.com"), digest("b@gmail.com"))
    assert carol.thread_key == f"email:{digest('q@gmail.com')}"
    assert "gmail" not in carol.model_dump_json().replace("carol@gmail.com", "")


def test_message_ids_with_or_without_brackets() -> None:
    assert message_ids("<a@X.org> <b@y.org>") == ["a@x.org", "b@y.org"]
    assert message_ids("a@X.org b@y.org") == ["a@x.org", "b@y.org"]
    assert message_ids("a@x.org,  b@y.org") == ["a@x.org", "b@y.org"]
    assert message_ids("not an id") == []


def test_an_mbox_list_post_with_precedence_bulk_opens_an_obligation(
    tmp_path: Path, resolver: Resolver
) -> None:
    """Item 9 at the engine: list software's Precedence: bulk does not make a post automated."""
    text = message(
        "alice@gmail.com",
        LIST,
        "q@gmail.com",
        0,
        "List-Id: <users.lists.us.example>",
        "Precedence: bulk",
    )
    box = tmp_path / "list.mbox"
    box.write_text("From alice@gmail.com Tue Mar  4 10:00:00 2025\n" + text.replace("\r\n", "\n"))
    events = [r.event for r in parse_mbox(box, resolver) if isinstance(r, Parsed)]
    assert events[0].flags == {Flag.MAILING_LIST}
    facts = list(replay(events, Engine()))
    assert [f.kind for f in facts][:1] == [FactKind.OBLIGATION_OPENED]
