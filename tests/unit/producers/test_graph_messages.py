"""Graph message resources become the e-mail importer's events (same ids, no header injection)."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from pathlib import Path

import pytest

from producers.parsers import email as email_parser
from producers.parsers.base import Parsed, Rejected
from producers.parsers.graph_messages import header_block, parse_message
from producers.resolution import Resolver
from schemas.events import Direction, Flag
from tests.builders import client, directory

pytestmark = pytest.mark.unit


def _resolver() -> Resolver:
    acme = client("acme", name="Acme", owner="ann@ours.example", domains=("acme.example",))
    return Resolver(directory(acme, staff_domains=("ours.example",)))


def _person(address: str, name: str = "") -> dict[str, object]:
    return {"emailAddress": {"name": name, "address": address}}


MESSAGE: dict[str, object] = {
    "id": "AAMk=",
    "internetMessageId": "<reply-2@ours.example>",
    "sentDateTime": "2026-03-02T09:30:00Z",
    "receivedDateTime": "2026-03-02T09:30:05Z",
    "subject": "Re: invoice",
    "from": _person("ann@ours.example", "Ann"),
    "sender": _person("ann@ours.example", "Ann"),
    "toRecipients": [_person("bob@acme.example", "Bob")],
    "ccRecipients": [_person("cy@ours.example")],
    "internetMessageHeaders": [
        {"name": "In-Reply-To", "value": "<question-1@acme.example>"},
        {"name": "References", "value": "<question-1@acme.example>"},
    ],
    "body": {"contentType": "text", "content": "never read"},
}


def test_the_event_equals_the_importers_for_the_same_message(tmp_path: Path) -> None:
    [graph] = parse_message(MESSAGE, _resolver(), origin="graph#0")
    eml = tmp_path / "reply.eml"
    eml.write_bytes(header_block(MESSAGE) + b"the body the archive keeps\r\n")
    [imported] = email_parser.parse_eml(eml, _resolver())
    assert isinstance(graph, Parsed)
    assert isinstance(imported, Parsed)
    same = ("event_id", "thread_key", "message_key", "parent_keys", "direction", "client_id")
    assert {f: getattr(graph.event, f) for f in same} == {
        f: getattr(imported.event, f) for f in same
    }
    assert graph.event.direction is Direction.OUTBOUND
    assert graph.event.thread_key == email_parser.email_event_id("<question-1@acme.example>")


def test_graph_headers_win_and_values_cannot_inject_headers() -> None:
    hostile = {
        **MESSAGE,
        "subject": "hello\r\nAuto-Submitted: auto-replied",
        "internetMessageHeaders": [{"name": "Auto-Submitted", "value": "auto-replied"}],
    }
    block = header_block(hostile)
    parsed = email.message_from_bytes(block, policy=default_policy)
    assert parsed["Subject"] == "hello Auto-Submitted: auto-replied"
    assert parsed.get_all("Auto-Submitted") == ["auto-replied"]
    [result] = parse_message(hostile, _resolver(), origin="graph#0")
    assert isinstance(result, Parsed)
    assert Flag.AUTO_REPLY in result.event.flags


def test_drafts_are_skipped_and_a_message_without_id_is_rejected() -> None:
    assert list(parse_message({**MESSAGE, "isDraft": True}, _resolver(), origin="g")) == []
    [rejected] = parse_message(
        {k: v for k, v in MESSAGE.items() if k != "internetMessageId"}, _resolver(), origin="g"
    )
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith("internetMessageId: missing")
    assert b"Re: invoice" in rejected.raw  # the resource rides along for the DLQ ...
    assert b"never read" not in rejected.raw  # ... without its body
