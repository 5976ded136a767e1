"""E-mail parsing rules on small synthetic messages: ids, threads, dates, senders, flags."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producers.parsers.base import Parsed, ParseResult, Rejected
from producers.parsers.email import (
    email_event_id,
    message_event,
    parse_eml,
    parse_maildir,
    parse_mbox,
)
from producers.resolution import Resolver
from schemas.base import encode
from schemas.events import Direction, Flag, InteractionEvent
from shinrai.errors import ShinraiError
from tests.builders import client, directory

pytestmark = pytest.mark.unit

SECRET_BODY = "The launch code is 0000. Nobody may store this sentence."


def raw_message(*headers: str, body: str = SECRET_BODY) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


@pytest.fixture
def resolver() -> Resolver:
    acme = client("acme", name="Acme", domains=("acme.example",), addresses=("taro@gmail.com",))
    return Resolver(directory(acme, staff_domains=("us.example",)))


def parse_one(raw: bytes, resolver: Resolver, **options: object) -> ParseResult:
    return message_event(raw, resolver, origin="test", source="email:eml", **options)  # type: ignore[arg-type]


def event_of(raw: bytes, resolver: Resolver, **options: object) -> InteractionEvent:
    result = parse_one(raw, resolver, **options)
    assert isinstance(result, Parsed), result
    return result.event


BASE = (
    "From: Suzuki <suzuki@acme.example>",
    "To: Support <support@us.example>",
    "Subject: Help with order",
    "Date: Tue, 04 Mar 2025 10:00:00 +0900",
    "Message-ID: <root-1@Acme.Example>",
)


def test_inbound_message_event(resolver: Resolver) -> None:
    event = event_of(raw_message(*BASE), resolver)
    assert event.direction is Direction.INBOUND
    assert event.client_id == "acme"
    assert event.counterpart == "suzuki@acme.example"
    assert event.staff == "support@us.example"
    assert event.occurred_at == datetime(2025, 3, 4, 1, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() is not None
    assert event.recorded_at == event.occurred_at  # default keeps parsing deterministic
    assert event.subject == "Help with order"
    assert event.source == "email:eml"
    assert event.flags == frozenset()
    # A root's thread key is its own event id.
    assert event.thread_key == event.event_id == email_event_id("<root-1@acme.example>")
    # The body is never stored anywhere in the event.
    assert b"launch code" not in encode(event)


def test_recorded_at_is_passed_in(resolver: Resolver) -> None:
    when = datetime(2025, 3, 5, tzinfo=UTC)
    assert event_of(raw_message(*BASE), resolver, recorded_at=when).recorded_at == when


def test_outbound_and_internal(resolver: Resolver) -> None:
    reply = raw_message(
        "From: Me <me@us.example>",
        "To: suzuki@acme.example",
        "Cc: boss@us.example",
        "Date: Tue, 04 Mar 2025 11:00:00 +0900",
        "Message-ID: <reply-1@us.example>",
        "In-Reply-To: <root-1@acme.example>",
        "References: <root-1@acme.example>",
    )
    event = event_of(reply, resolver)
    assert (event.direction, event.client_id, event.counterpart, event.staff) == (
        Direction.OUTBOUND,
        "acme",
        "suzuki@acme.example",
        "me@us.example",
    )
    internal = raw_message(
        "From: me@us.example",
        "To: boss@us.example",
        "Date: Tue, 04 Mar 2025 11:00:00 +0900",
        "Message-ID: <int-1@us.example>",
    )
    assert event_of(internal, resolver).direction is Direction.INTERNAL


def test_thread_key_from_first_reference_even_when_parents_are_missing(resolver: Resolver) -> None:
    root_key = event_of(raw_message(*BASE), resolver).thread_key
    common = ("From: me@us.example", "To: suzuki@acme.example", "Date: Tue, 4 Mar 2025 12:00 +0000")
    deep = raw_message(
        *common,
        "Message-ID: <deep@us.example>",
        # Folded References; the domain's case differs from the root's own Message-ID header.
        "References: <root-1@ACME.example>\r\n <missing-middle@acme.example>",
        "In-Reply-To: <missing-middle@acme.example>",
    )
    only_in_reply_to = raw_message(
        *common, "Message-ID: <irt@us.example>", "In-Reply-To: <root-1@acme.example> (sent by x)"
    )
    assert event_of(deep, resolver).thread_key == root_key
    assert event_of(only_in_reply_to, resolver).thread_key == root_key
    assert event_of(deep, resolver).event_id != event_of(only_in_reply_to, resolver).event_id


def test_same_message_from_two_archives_has_one_event_id(resolver: Resolver) -> None:
    a = raw_message("Received: from a by archive-a; Tue, 4 Mar 2025 01:00:05 +0000", *BASE)
    b = raw_message("Received: from b by archive-b; Tue, 4 Mar 2025 01:00:09 +0000", *BASE)
    assert event_of(a, resolver).event_id == event_of(b, resolver).event_id


def test_event_id_without_message_id_is_a_stable_header_and_body_hash(resolver: Resolver) -> None:
    headers = [h for h in BASE if not h.startswith("Message-ID")]
    one = event_of(
        raw_message("Received: by x; Tue, 4 Mar 2025 01:00:05 +0000", *headers), resolver
    )
    two = event_of(
        raw_message("Received: by y; Tue, 4 Mar 2025 01:00:09 +0000", *headers), resolver
    )
    other_body = event_of(raw_message(*headers, body="something else"), resolver)
    assert one.event_id == two.event_id
    assert one.event_id.startswith("email:h:")
    assert other_body.event_id != one.event_id
    assert one.thread_key == one.event_id


def test_date_falls_back_to_oldest_received_then_from_line(resolver: Resolver) -> None:
    headers = [h for h in BASE if not h.startswith("Date")]
    received = raw_message(
        "Received: from relay2 by archive; Wed, 05 Mar 2025 09:00:00 +0000",
        "Received: from relay1 by relay2; Wed, 05 Mar 2025 08:59:00 +0000",
        "Received: from client by relay1; garbage date",
        *headers,
    )
    assert event_of(received, resolver).occurred_at == datetime(2025, 3, 5, 8, 59, tzinfo=UTC)
    bad_date = raw_message("Date: the day after tomorrow", *headers)
    result = parse_one(bad_date, resolver, from_line="From x@y.example  Thu Mar  6 07:08:09 2025")
    assert isinstance(result, Parsed)
    assert result.event.occurred_at == datetime(2025, 3, 6, 7, 8, 9, tzinfo=UTC)
    rejected = parse_one(bad_date, resolver)
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith("Date: unparseable 'the day after tomorrow'")
    assert rejected.raw == bad_date


def test_zone_unknown_date_is_utc(resolver: Resolver) -> None:
    headers = [h for h in BASE if not h.startswith("Date")]
    event = event_of(raw_message("Date: Tue, 04 Mar 2025 10:00:00 -0000", *headers), resolver)
    assert event.occurred_at == datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def test_from_munging_uses_reply_to(resolver: Resolver) -> None:
    munged = raw_message(
        "=?utf-8?q?Taro_Yamada_via_Help-list?= <help@lists.us.example>",
        "Reply-To: Taro Yamada <Taro@gmail.com>",
        "To: help@lists.us.example",
        "List-Id: Help list <help.lists.us.example>",
        "List-Post: <mailto:help@lists.us.example>",
        "Date: Tue, 04 Mar 2025 10:00:00 +0900",
        "Message-ID: <m1@gmail.com>",
    ).replace(b"=?utf-8", b"From: =?utf-8", 1)
    event = event_of(munged, resolver)
    assert event.counterpart == "taro@gmail.com"
    assert event.client_id == "acme"  # free-mail address listed on the client
    assert event.direction is Direction.INBOUND  # the list lives under our staff domain
    assert event.flags == frozenset({Flag.MAILING_LIST})


def test_reply_to_is_ignored_when_from_is_not_munged(resolver: Resolver) -> None:
    # ASF style: the list sets Reply-To to itself; From is the real author.
    normal = raw_message(
        "From: Suzuki <suzuki@acme.example>",
        'Reply-To: "Dev List" <dev@lists.us.example>',
        "To: dev@lists.us.example",
        "List-Post: <mailto:dev@lists.us.example>",
        "Date: Tue, 04 Mar 2025 10:00:00 +0900",
        "Message-ID: <m2@acme.example>",
    )
    assert event_of(normal, resolver).counterpart == "suzuki@acme.example"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("Auto-Submitted: auto-replied; owner-email=x@acme.example",), {Flag.AUTO_REPLY}),
        (("Auto-Submitted: No",), set()),
        (("X-Autoreply: yes",), {Flag.AUTO_REPLY}),
        (("X-Autorespond: Out of office",), {Flag.AUTO_REPLY}),
        (("Precedence: junk",), {Flag.AUTO_REPLY}),
        (("Precedence: auto_reply",), {Flag.AUTO_REPLY}),
        (("Precedence: bulk",), {Flag.AUTO_REPLY}),
        (("List-Id: <dev.lists.us.example>",), {Flag.MAILING_LIST}),
        # A list manager stamps Precedence: bulk/list on every post: not the author's automation.
        (("List-Id: <dev.lists.us.example>", "Precedence: bulk"), {Flag.MAILING_LIST}),
        (
            ("Mailing-List: contact dev-help@x; run by ezmlm", "Precedence: list"),
            {Flag.MAILING_LIST},
        ),
        (
            ("List-Id: <dev.lists.us.example>", "Precedence: junk"),
            {Flag.MAILING_LIST, Flag.AUTO_REPLY},
        ),
        (
            ("List-Id: <dev.lists.us.example>", "Auto-Submitted: auto-generated"),
            {Flag.MAILING_LIST, Flag.AUTO_REPLY},
        ),
    ],
)
def test_automation_flags(resolver: Resolver, extra: tuple[str, ...], expected: set[Flag]) -> None:
    assert event_of(raw_message(*BASE, *extra), resolver).flags == expected


def test_strict_reading_of_list_precedence_is_available(resolver: Resolver) -> None:
    raw = raw_message(*BASE, "List-Id: <dev.lists.us.example>", "Precedence: bulk")
    flags = event_of(raw, resolver, list_bulk_is_auto_reply=True).flags
    assert flags == {Flag.MAILING_LIST, Flag.AUTO_REPLY}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "Date"),
        (b"\x00\xff\xfe garbage without any header structure", "Date"),
        (raw_message("To: a@b.example", "Date: Tue, 04 Mar 2025 10:00:00 +0900"), "From"),
        (raw_message("From: nobody", "Date: Tue, 04 Mar 2025 10:00:00 +0900"), "From"),
        (raw_message("From: a@acme.example", "Subject: no date"), "Date"),
    ],
)
def test_bad_messages_are_rejected_with_reason_and_bytes(
    resolver: Resolver, raw: bytes, field: str
) -> None:
    result = parse_one(raw, resolver)
    assert isinstance(result, Rejected)
    assert field + ":" in result.reason
    assert result.raw == raw


def test_hostile_headers_and_encodings_never_raise(resolver: Resolver) -> None:
    nasty = [
        # An encoded word in an unknown charset, and raw non-UTF-8 bytes in headers.
        raw_message(*BASE, "Subject: =?x-unknown?q?caf=E9?="),
        b"From: \xe9\xe8 <a@acme.example>\r\nDate: Tue, 04 Mar 2025 10:00:00 +0900\r\n"
        b"Subject: \xff\xfe\r\n\r\nx",
        raw_message(*BASE, "Content-Type: multipart/mixed; boundary=", body="--\r\nbroken"),
        raw_message(*BASE, "Content-Transfer-Encoding: base64", body="!!!not base64"),
        raw_message(
            "From: " + "<" * 5000 + "a@acme.example", "Date: Tue, 04 Mar 2025 10:00:00 +0900"
        ),
        raw_message(*BASE, "References: " + "<x@y> " * 2000),
        raw_message(*BASE[:-1], "Message-ID: <" + "x" * 3000 + "@acme.example>"),
    ]
    for raw in nasty:
        result = parse_one(raw, resolver)
        if isinstance(result, Parsed):
            encode(result.event)  # every kept string must serialise (no lone surrogates)
        else:
            assert result.reason
            assert result.raw == raw


def test_undecodable_subject_is_kept_serialisable(resolver: Resolver) -> None:
    raw = raw_message(*BASE[:2], *BASE[3:]).replace(
        b"\r\n\r\n", b"\r\nSubject: caf\xe9 \xff\r\n\r\n", 1
    )
    event = event_of(raw, resolver)
    assert event.subject is not None
    assert event.subject.startswith("caf")
    encode(event)


def test_eml_file_folder_and_missing(tmp_path: Path, resolver: Resolver) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.eml").write_bytes(raw_message(*BASE))
    (tmp_path / "sub" / "b.EML").write_bytes(b"not a message")
    (tmp_path / "ignored.txt").write_bytes(raw_message(*BASE))
    results = list(parse_eml(tmp_path, resolver))
    assert [type(r).__name__ for r in results] == ["Parsed", "Rejected"]
    assert [r.origin for r in results] == ["a.eml", "sub/b.EML"]
    assert isinstance(next(parse_eml(tmp_path / "a.eml", resolver)), Parsed)
    with pytest.raises(ShinraiError):
        next(parse_eml(tmp_path / "missing.eml", resolver))


def test_mbox_and_maildir_give_the_same_events(tmp_path: Path, resolver: Resolver) -> None:
    messages = [
        raw_message(*BASE),
        raw_message(*[h for h in BASE if not h.startswith("Date")]),  # dated by its From_ line
        raw_message("Subject: nothing usable"),
    ]
    mbox_path = tmp_path / "box.mbox"
    box = mailbox.mbox(mbox_path)
    for raw in messages:
        message = mailbox.mboxMessage(raw)
        message.set_from("MAILER-DAEMON", (2025, 3, 7, 1, 2, 3, 0, 0, 0))
        box.add(message)
    box.close()
    from_mbox = list(parse_mbox(mbox_path, resolver))
    assert [type(r).__name__ for r in from_mbox] == ["Parsed", "Parsed", "Rejected"]
    assert [r.origin for r in from_mbox] == ["box.mbox#1", "box.mbox#2", "box.mbox#3"]
    second = from_mbox[1]
    assert isinstance(second, Parsed)
    assert second.event.occurred_at == datetime(2025, 3, 7, 1, 2, 3, tzinfo=UTC)
    rejected = from_mbox[2]
    assert isinstance(rejected, Rejected)
    assert rejected.raw.startswith(b"From MAILER-DAEMON")  # the whole original record
    assert all(isinstance(r, Parsed) and r.event.source == "email:mbox" for r in from_mbox[:2])

    maildir = mailbox.Maildir(tmp_path / "md", create=True)
    maildir.add(messages[0])
    maildir.close()
    (from_maildir,) = parse_maildir(tmp_path / "md", resolver)
    first = from_mbox[0]
    assert isinstance(from_maildir, Parsed)
    assert isinstance(first, Parsed)
    assert from_maildir.event.event_id == first.event.event_id
    assert from_maildir.event.source == "email:maildir"
    with pytest.raises(ShinraiError):
        list(parse_maildir(tmp_path, resolver))
    with pytest.raises(ShinraiError):
        list(parse_mbox(tmp_path / "missing.mbox", resolver))
