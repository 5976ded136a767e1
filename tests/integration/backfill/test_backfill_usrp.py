"""``shinrai backfill`` of the real usrp-users archive into embedded ClickHouse.

The expected first-response counts are computed here from the parsed events with a plain rule
(a thread whose first inbound message from the client is later followed by one of our messages
to that client), never with the engine, and compared with the rows ClickHouse holds.
"""

from __future__ import annotations

import tarfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from click.testing import CliRunner

from producers.parsers.base import Parsed
from producers.parsers.email import parse_eml
from producers.resolution import Resolver
from schemas.directory import Client, ClientDirectory, StaffDirectory
from schemas.events import Direction, Flag, InteractionEvent
from shinrai.cli import main
from shinrai.settings import ClickHouseSettings
from tests.integration.clickhouse.snapshots import snapshot, stop_merges
from tests.shared_data import require

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client as ChClient

pytestmark = pytest.mark.integration

STAFF_DOMAINS = ("ettus.com", "ni.com", "emerson.com")  # usrp-users PROVENANCE.md


@pytest.fixture(scope="module")
def usrp(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = shared_data / "email" / "usrp-users" / "usrp-users-2021Q1.raw-eml.tar.gz"
    require(archive.is_file(), f"third-party archive {archive} is missing")
    target = tmp_path_factory.mktemp("usrp")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def _staff_only_events(folder: Path) -> list[InteractionEvent]:
    resolver = Resolver(ClientDirectory(staff=StaffDirectory(domains=STAFF_DOMAINS)))
    return [r.event for r in parse_eml(folder, resolver) if isinstance(r, Parsed)]


@pytest.fixture(scope="module")
def directory(usrp: Path) -> ClientDirectory:
    """Clients = the three busiest company poster domains and the busiest free-mail poster."""
    resolver = Resolver(ClientDirectory(staff=StaffDirectory(domains=STAFF_DOMAINS)))
    domains: Counter[str] = Counter()
    free: Counter[str] = Counter()
    for event in _staff_only_events(usrp):
        sender = event.counterpart
        if event.staff is None or sender is None or "@" not in sender:
            continue  # only posts to the list (the list address is ours) are requests to us
        if resolver.is_staff_email(sender):
            continue
        domain = sender.rpartition("@")[2]
        if resolver.is_free_mail(domain):
            free[sender] += 1
        else:
            domains[domain] += 1
    top = sorted(domains, key=lambda d: (-domains[d], d))[:3]
    poster = sorted(free, key=lambda a: (-free[a], a))[0]
    clients = [
        Client(client_id=f"c{i}", name=domain, domains=(domain,), owner=f"owner{i}@ettus.com")
        for i, domain in enumerate(top)
    ]
    clients.append(
        Client(client_id="free", name="free-mail poster", addresses=(poster,), owner="x@ni.com")
    )
    return ClientDirectory(clients=tuple(clients), staff=StaffDirectory(domains=STAFF_DOMAINS))


def expected_first_responses(events: list[InteractionEvent]) -> dict[str, int]:
    """Per client: threads whose first non-automatic inbound is followed by an outbound."""
    threads: dict[tuple[str, str], list[InteractionEvent]] = defaultdict(list)
    seen: set[str] = set()
    for event in events:
        if event.event_id in seen or event.client_id is None or event.thread_key is None:
            continue
        seen.add(event.event_id)
        threads[(event.client_id, event.thread_key)].append(event)
    counts: Counter[str] = Counter()
    for (client, _), items in threads.items():
        asks = [
            e.occurred_at
            for e in items
            if e.direction is Direction.INBOUND and Flag.AUTO_REPLY not in e.flags
        ]
        if not asks:
            continue
        first = min(asks)
        if any(e.direction is Direction.OUTBOUND and e.occurred_at >= first for e in items):
            counts[client] += 1
    return dict(counts)


def _backfill(folder: Path, directory_file: Path, target: ClickHouseSettings) -> None:
    result = CliRunner().invoke(
        main,
        [
            "backfill",
            str(folder),
            "--format",
            "eml",
            "--directory",
            str(directory_file),
            "--clickhouse",
            target.url,
            "--database",
            target.database,
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output


def test_backfill_first_responses_match_an_independent_count_and_rerun_changes_nothing(
    usrp: Path,
    directory: ClientDirectory,
    tmp_path: Path,
    ch_target: ClickHouseSettings,
    ch_client: Callable[[ClickHouseSettings], ChClient],
) -> None:
    directory_file = tmp_path / "clients.yaml"
    directory_file.write_text(yaml.safe_dump(directory.model_dump(mode="json")), "utf-8")
    events = [r.event for r in parse_eml(usrp, Resolver(directory)) if isinstance(r, Parsed)]
    expected = expected_first_responses(events)
    assert sum(expected.values()) >= 5  # the test means something only if replies exist

    _backfill(usrp, directory_file, ch_target)
    client = ch_client(ch_target)
    rows = client.query(
        "SELECT client_id, count() FROM sla_facts FINAL WHERE kind = 'fulfilled' "
        "AND obligation_kind = 'first_response' GROUP BY client_id"
    ).result_rows
    assert dict(rows) == expected
    assert len(expected) >= 2  # several clients answered, not one lucky domain
    # Every parsed message is an interaction row (distinct event ids), clients are written.
    distinct = len({e.event_id for e in events})
    assert client.query("SELECT count() FROM interactions").result_rows[0][0] == distinct
    names = client.query("SELECT client_id FROM clients FINAL ORDER BY client_id").result_rows
    assert [n[0] for n in names] == sorted(c.client_id for c in directory.clients)

    stop_merges(client)
    before = snapshot(client)
    _backfill(usrp, directory_file, ch_target)
    after = snapshot(client)
    assert after == before
    assert sum(len(v) for v in before.values()) > distinct
