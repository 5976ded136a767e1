"""Chases on real mail (issue 19): the engine's CHASED facts equal a person's count on usrp-users.

The person's count, written here from raw headers (the header reader of ``test_email_truth``,
which is test code, not the production parser): union every Message-ID with its References and
In-Reply-To ids into conversations; order each conversation's dated messages by Date (then id);
staff = the vendor's domains (PROVENANCE.md); every other poster is its own client (by the real
address behind the list's From-munging). Walking a conversation, a client message while that
client has an unanswered message in it is "the client wrote again before any staff answer": a
chase; any staff message answers every client of the conversation (the list reaches them all).

The project's path: the production parser with a directory that declares every poster a client
and the vendor staff, the events replayed through the engine with new-conversation chases off
(``chase_window=None``: the person counts chases inside a conversation only; this archive has
no calls or voicemails), and the CHASED facts' source events.

Measured on the 2021Q1 archive: both sides count 154 chases, the same messages, each naming the
same waiting message with the same wait to the second: no difference at all. Where both count a
chase the test checks the waiting message and the wait; a difference must carry one of these
known reasons (``_reason``; none occurs today), listed in the assertion message:

* ``AUTO_REPLY``: the parser flags the message auto-reply (an "Auto-Submitted"/"X-Autoreply"
  header the person's reader does not look at), which never chases.
* ``SAME_INSTANT``: the message carries the same Date as the unanswered one (to the second);
  the engine counts only what was opened strictly before (its tie rule), the person's walk
  orders equal dates by id.
* ``STAFF_SAME_INSTANT``: a staff answer carries the same Date as the client's message; an
  answer counts only for what was opened strictly before it, so the engine keeps the client's
  message open where the person's walk (ordered by id) saw it answered, or the other way round.
* ``UNDATED``: the message or its predecessor has no Date; the parser dates it from Received /
  the From_ line, the person leaves it out.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from pathlib import Path

import pytest

from engine.core import Engine
from engine.replay import replay
from producers.parsers.base import Parsed
from producers.parsers.email import parse_eml
from producers.resolution import Resolver
from schemas.events import Flag, InteractionEvent
from schemas.facts import FactKind
from tests.shared_data import shared_path
from tests.unit.email.test_email_truth import (
    USRP_STAFF,
    Message,
    directory_for,
    event_id_of,
    is_staff,
    read_message,
)

pytestmark = pytest.mark.unit

AUTO_REPLY = "the parser flags it auto-reply"
SAME_INSTANT = "dated the very instant of the unanswered message (engine: strictly before)"
STAFF_SAME_INSTANT = "a staff answer carries the same Date (engine: answers strictly before)"
UNDATED = "undated in the headers (the parser dates it from Received / From_)"


@pytest.fixture(scope="module")
def usrp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = shared_path("email/usrp-users") / "usrp-users-2021Q1.raw-eml.tar.gz"
    target = tmp_path_factory.mktemp("usrp-chase")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def _conversations(messages: list[Message]) -> dict[str, list[Message]]:
    """Union of ids into conversations (one entry per Message-ID: re-deliveries are one)."""
    by_id: dict[str, Message] = {}
    for msg in messages:
        by_id.setdefault(msg.mid, msg)
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for msg in by_id.values():
        for other in msg.ancestors:
            a, b = root(msg.mid), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[Message]] = defaultdict(list)
    for msg in by_id.values():
        groups[root(msg.mid)].append(msg)
    return groups


def person_chases(messages: list[Message]) -> dict[str, Message]:
    """Chasing message event id -> the message it chased (the client's oldest unanswered)."""
    chases: dict[str, Message] = {}
    for members in _conversations(messages).values():
        dated = sorted((m for m in members if m.date is not None), key=lambda m: (m.date, m.mid))
        waiting: dict[str, Message] = {}  # client -> its oldest unanswered message
        for msg in dated:
            if msg.sender is None:
                continue
            if is_staff(msg.sender, USRP_STAFF):
                waiting.clear()  # a post to the list answers everyone in the conversation
            elif msg.sender in waiting:
                chases[event_id_of(msg.mid)] = waiting[msg.sender]
            else:
                waiting[msg.sender] = msg
    return chases


def project_chases(
    folder: Path, messages: list[Message]
) -> tuple[dict[str, tuple[str, float]], dict[str, InteractionEvent]]:
    """Chasing event id -> (the chased obligation's opening event id, calendar seconds waited)."""
    directory = directory_for(messages, USRP_STAFF)
    events: dict[str, InteractionEvent] = {}
    for result in parse_eml(folder, Resolver(directory)):
        if isinstance(result, Parsed):
            events.setdefault(result.event.event_id, result.event)
    facts = list(replay(events.values(), Engine(chase_window=None)))
    opener = {
        f.obligation_id: f.source_event_id
        for f in facts
        if f.kind is FactKind.OBLIGATION_OPENED and f.source_event_id is not None
    }
    chases: dict[str, tuple[str, float]] = {}
    for f in facts:
        if f.kind is FactKind.CHASED:
            assert f.source_event_id is not None
            assert f.calendar_seconds is not None
            chases[f.source_event_id] = (opener[f.obligation_id], f.calendar_seconds)
    return chases, events


def test_usrp_users_chases_equal_a_persons_count(usrp_folder: Path) -> None:
    raws = [f.read_bytes() for f in sorted(usrp_folder.rglob("*.eml"))]
    messages = [m for m in (read_message(raw) for raw in raws) if m is not None]
    person = person_chases(messages)
    project, events = project_chases(usrp_folder, messages)
    by_event = {event_id_of(m.mid): m for m in messages}
    conversation_of = {
        m.mid: members for members in _conversations(messages).values() for m in members
    }
    diffs: list[tuple[str, str, str]] = []
    for eid in sorted(set(person) ^ set(project)):
        side = "person only" if eid in person else "project only"
        msg = by_event.get(eid)
        diffs.append((eid, side, _reason(eid, msg, person.get(eid), events, conversation_of)))
    listing = "\n".join(f"  {eid}: {side}: {why}" for eid, side, why in diffs)
    shown = f"usrp-users chases: person {len(person)} / project {len(project)}\n{listing}"
    print(shown)
    assert all(why != "UNEXPLAINED" for _, _, why in diffs), shown
    assert len(person) > 10, shown  # the archive does hold chases: the count means something
    # Where both count a chase, they name the same waiting message and the same wait.
    for eid in set(person) & set(project):
        waited = person[eid]
        msg = by_event[eid]
        assert msg.date is not None
        assert waited.date is not None
        assert project[eid][0] == event_id_of(waited.mid), (eid, shown)
        assert project[eid][1] == (msg.date - waited.date).total_seconds(), (eid, shown)


def _reason(
    eid: str,
    msg: Message | None,
    chased: Message | None,
    events: dict[str, InteractionEvent],
    conversation_of: dict[str, list[Message]],
) -> str:
    event = events.get(eid)
    if event is not None and Flag.AUTO_REPLY in event.flags:
        return AUTO_REPLY
    if msg is None or msg.date is None:
        return UNDATED
    if chased is not None and chased.date == msg.date:
        return SAME_INSTANT
    members = conversation_of.get(msg.mid, [])
    staff_dates = {m.date for m in members if is_staff(m.sender, USRP_STAFF)}
    mine = [m for m in members if m.sender == msg.sender and m.date is not None]
    if any(m.date in staff_dates for m in mine):
        return STAFF_SAME_INSTANT
    if any(m.date is None for m in members if m.sender == msg.sender):
        return UNDATED
    return "UNEXPLAINED"
