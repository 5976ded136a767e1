"""Truth on real mail (issue 13): the project's first responses equal a person's count.

For each real archive, an independent count written here (its own header scan, its own
threading: the union of Message-ID, In-Reply-To and References ids with or without brackets;
staff = the vendor's domains; a conversation opened by a client is answered by the first later
staff message in it) is compared with the project's own path: the production parser with a
directory that declares every poster as a client and the vendor's domains as staff, the events
replayed through the engine, and per conversation the first obligation opened and its
fulfilment.

Figures compared: client-opened conversations, answered ones, median first-response seconds.
A conversation counted differently on the two sides must have a known reason (``REASONS``);
the assertion message lists every difference with its reason and both sides' figures.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import tarfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from engine.core import Engine
from engine.replay import replay
from producers.parsers.base import Parsed, ParseResult
from producers.parsers.email import parse_eml, parse_mbox
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory, StaffDirectory
from schemas.events import Flag, InteractionEvent
from schemas.facts import FactKind, ObligationKind
from tests.shared_data import shared_path

pytestmark = pytest.mark.unit

USRP_STAFF = ("ettus.com", "ni.com", "emerson.com")  # usrp-users/PROVENANCE.md
APACHE_STAFF = ("apache.org",)
PONYMAIL_ARCHIVES = (
    "maven-dev-2017-11-listsao.mbox",
    "maven-dev-2017-11-mailarchivesao.mbox",
    "maven-dev-2017-11-mboxvm.mbox",
    "maven-dev-2017-12-listsao.mbox",
    "httpd-users-2020-07.mbox",
)
"""The list-month exported by the three archivers, and the other two big list-months."""

STAFF_OPENED = "opened by staff: the engine owes the client's later message an answer"
AUTO_REPLY = "the opening message is flagged auto-reply by the parser"
UNDATED = "the opening message has no Date: the parser dates it from Received / From_"


# -- the independent count ------------------------------------------------------------------------


@dataclass
class Message:
    """What a person reads off one message's headers."""

    mid: str
    ancestors: list[str]
    date: datetime | None
    sender: str | None
    opener: Message | None = None  # the first dated message of its conversation


def _ids(value: str) -> list[str]:
    """Ids in brackets, else bare ``local@domain`` tokens; the domain part lower-cased."""
    found = re.findall(r"<\s*([^<>\s]+)\s*>", value) or [
        t for t in re.split(r"[\s,]+", value) if re.fullmatch(r"[^<>\s@]+@[^<>\s@]+", t)
    ]
    out = []
    for token in found:
        local, at, domain = token.rpartition("@")
        out.append(f"{local}@{domain.lower()}" if at else token)
    return out


def _headers(raw: bytes) -> dict[str, list[str]]:
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode("latin-1")
    headers: dict[str, list[str]] = defaultdict(list)
    for line in re.sub(r"\r?\n[ \t]+", " ", head).splitlines():
        name, sep, value = line.partition(":")
        if sep and name and " " not in name:
            headers[name.lower()].append(value.strip())
    return headers


def _address(value: str | None) -> str | None:
    if not value:
        return None
    found = re.findall(r"<([^<>\s]+@[^<>\s]+)>", value) or re.findall(
        r"[^\s<>\"']+@[^\s<>\"']+", value
    )
    return found[0].strip("<>\"'").lower() if found else None


def read_message(raw: bytes) -> Message | None:
    headers = _headers(raw)
    mids = _ids(" ".join(headers.get("message-id", [])))
    if not mids:
        return None
    ancestors = _ids(" ".join(headers.get("references", []) + headers.get("in-reply-to", [])))
    try:
        date: datetime | None = parsedate_to_datetime(headers["date"][0])
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)  # "-0000": zone unknown, read as UTC
    except (KeyError, IndexError, TypeError, ValueError):
        date = None
    from_value = (headers.get("from") or [""])[0]
    sender = _address(from_value)
    post = re.search(r"mailto:([^>?\s]+)", " ".join(headers.get("list-post", [])))
    munged = " via " in from_value or (post is not None and sender == post.group(1).lower())
    reply_to = _address((headers.get("reply-to") or [None])[0])
    if munged and reply_to is not None:
        sender = reply_to
    return Message(mids[0], [a for a in ancestors if a != mids[0]], date, sender)


def is_staff(address: str | None, domains: tuple[str, ...]) -> bool:
    domain = (address or "").rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d) for d in domains)


def event_id_of(mid: str) -> str:
    """The project's published event id form: ``email:`` + 32 hex of SHA-256 of the id."""
    return "email:" + hashlib.sha256(mid.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass
class Count:
    """Per conversation (keyed by its opening message's event id): answered after seconds."""

    opened: dict[str, float | None] = field(default_factory=dict)

    def figures(self) -> tuple[int, int, float | None]:
        answered = [s for s in self.opened.values() if s is not None]
        return len(self.opened), len(answered), statistics.median(answered) if answered else None


def independent_count(
    messages: Iterable[Message], staff: tuple[str, ...]
) -> tuple[Count, dict[str, Message]]:
    """A person's count: union the ids, first message opens, first later staff reply answers."""
    by_id: dict[str, Message] = {}
    for msg in messages:
        by_id.setdefault(msg.mid, msg)  # a re-delivery is the same message
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for msg in by_id.values():
        for other in msg.ancestors:
            a, b = find(msg.mid), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[Message]] = defaultdict(list)
    for msg in by_id.values():
        if msg.date is not None:
            groups[find(msg.mid)].append(msg)
    count = Count()
    for members in groups.values():
        members.sort(key=lambda m: (m.date, m.mid))
        opener = members[0]
        for member in members:
            member.opener = opener
        if opener.sender is None or is_staff(opener.sender, staff):
            continue
        assert opener.date is not None
        reply = next(
            (m for m in members[1:] if is_staff(m.sender, staff) and m.date >= opener.date),  # type: ignore[operator]
            None,
        )
        seconds = None if reply is None else (reply.date - opener.date).total_seconds()  # type: ignore[operator]
        count.opened[event_id_of(opener.mid)] = seconds
    return count, by_id


# -- the project's path ---------------------------------------------------------------------------


def directory_for(messages: Iterable[Message], staff: tuple[str, ...]) -> ClientDirectory:
    """Every poster who is not staff is a client (by full address); the vendor is staff."""
    posters = sorted({m.sender for m in messages if m.sender and not is_staff(m.sender, staff)})
    clients = tuple(
        Client(
            client_id="c" + hashlib.sha256(a.encode()).hexdigest()[:16],
            name=a,
            addresses=(a,),
            owner="owner@example.org",
        )
        for a in posters
        if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a)
    )
    return ClientDirectory(clients=clients, staff=StaffDirectory(domains=staff))


def project_count(results: Iterable[ParseResult]) -> tuple[Count, dict[str, InteractionEvent]]:
    """First responses per conversation from the engine's facts (replay of the parsed events)."""
    events: dict[str, InteractionEvent] = {}
    for result in results:
        if isinstance(result, Parsed):
            events.setdefault(result.event.event_id, result.event)
    opened: dict[str, tuple[datetime, str]] = {}  # obligation -> (opened_at, source event)
    thread: dict[str, str] = {}  # obligation -> its latest thread key
    seconds: dict[str, float] = {}
    for fact in replay(events.values(), Engine()):
        if fact.obligation_id is None or fact.thread_key is None:
            continue
        thread[fact.obligation_id] = fact.thread_key
        if (
            fact.kind is FactKind.OBLIGATION_OPENED
            and fact.obligation_kind is ObligationKind.FIRST_RESPONSE
        ):
            assert fact.opened_at is not None
            assert fact.source_event_id is not None
            opened[fact.obligation_id] = (fact.opened_at, fact.source_event_id)
        elif fact.kind is FactKind.FULFILLED and fact.calendar_seconds is not None:
            seconds[fact.obligation_id] = fact.calendar_seconds
    first: dict[str, str] = {}  # conversation -> its earliest first-response obligation
    for ob, (at, source) in opened.items():
        key = thread[ob]
        if key not in first or (at, source) < opened[first[key]]:
            first[key] = ob
    count = Count({opened[ob][1]: seconds.get(ob) for ob in first.values()})
    return count, events


# -- comparison -----------------------------------------------------------------------------------


def differences(
    person: Count,
    project: Count,
    messages: dict[str, Message],
    events: dict[str, InteractionEvent],
    staff: tuple[str, ...],
) -> list[tuple[str, str, str]]:
    """(opening event id, what differs, reason or "UNEXPLAINED") for each differing conversation."""
    by_event = {event_id_of(mid): m for mid, m in messages.items()}
    out: list[tuple[str, str, str]] = []
    for opener in sorted(set(person.opened) | set(project.opened)):
        mine, theirs = person.opened.get(opener, "absent"), project.opened.get(opener, "absent")
        if mine == theirs or (
            isinstance(mine, float) and isinstance(theirs, float) and abs(mine - theirs) < 1e-6
        ):
            continue
        what = f"person {mine} / project {theirs}"
        msg, event = by_event.get(opener), events.get(opener)
        reason = "UNEXPLAINED"
        if mine == "absent" and msg is not None and msg.date is None:
            reason = UNDATED
        elif mine == "absent" and msg is not None and msg.opener is not None:
            if msg.opener is not msg and is_staff(msg.opener.sender, staff):
                reason = STAFF_OPENED
        elif theirs == "absent" and event is not None and Flag.AUTO_REPLY in event.flags:
            reason = AUTO_REPLY
        out.append((opener, what, reason))
    return out


# -- inputs ---------------------------------------------------------------------------------------


def mbox_messages(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    starts = [m.start() for m in re.finditer(rb"^From ", data, re.MULTILINE)]
    for a, b in zip(starts, [*starts[1:], len(data)], strict=True):
        block = data[a:b]
        yield block.split(b"\n", 1)[1] if b"\n" in block else b""


@pytest.fixture(scope="module")
def usrp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = shared_path("email/usrp-users") / "usrp-users-2021Q1.raw-eml.tar.gz"
    target = tmp_path_factory.mktemp("usrp-truth")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def check(
    label: str,
    raws: Iterable[bytes],
    parse: Callable[[Resolver], Iterable[ParseResult]],
    staff: tuple[str, ...],
) -> tuple[
    tuple[int, int, float | None], tuple[int, int, float | None], list[tuple[str, str, str]]
]:
    """Both counts of one archive; fails listing every unexplained difference."""
    messages = [m for m in (read_message(raw) for raw in raws) if m is not None]
    person, by_id = independent_count(messages, staff)
    results = list(parse(Resolver(directory_for(messages, staff))))
    project, events = project_count(results)
    diffs = differences(person, project, by_id, events, staff)
    listing = "\n".join(f"  {opener}: {what}: {reason}" for opener, what, reason in diffs)
    shown = f"{label}: person {person.figures()} / project {project.figures()}\n{listing}"
    assert all(reason != "UNEXPLAINED" for _, _, reason in diffs), shown
    # With the explained conversations set aside, the figures are equal.
    explained = {opener for opener, _, _ in diffs}
    same_person = Count({k: v for k, v in person.opened.items() if k not in explained})
    same_project = Count({k: v for k, v in project.opened.items() if k not in explained})
    assert same_person.figures() == same_project.figures(), shown
    print(shown)
    return person.figures(), project.figures(), diffs


def test_usrp_users_first_responses_match_a_persons_count(usrp_folder: Path) -> None:
    files = sorted(usrp_folder.rglob("*.eml"))
    person, project, _ = check(
        "usrp-users",
        (f.read_bytes() for f in files),
        lambda resolver: parse_eml(usrp_folder, resolver),
        USRP_STAFF,
    )
    assert person[1] > 0  # the archive does hold answered conversations
    assert project[0] >= person[0]  # the only explained differences add conversations


@pytest.mark.parametrize("name", PONYMAIL_ARCHIVES)
def test_ponymail_first_responses_match_a_persons_count(name: str) -> None:
    path = shared_path("email/apache-ponymail") / name
    person, project, _ = check(
        name, mbox_messages(path), lambda r: parse_mbox(path, r), APACHE_STAFF
    )
    assert person[0] > 0
    assert project[0] >= person[0]  # the only explained differences add conversations
