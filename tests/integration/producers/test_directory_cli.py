"""``shinrai directory publish|show`` against a compacted topic on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka.admin import KafkaAdminClient, NewTopic

from producers.directory_io import load_directory
from schemas.directory import ClientDirectory
from shinrai.cli import main

pytestmark = pytest.mark.integration

TWO_CLIENTS = """
clients:
  - client_id: acme
    name: Acme
    domains: [acme.example]
    phone_numbers: ["+14155550100"]
    owner: owner@ours.example
  - client_id: globex
    name: Globex
    domains: [globex.example]
    owner: owner@ours.example
staff:
  domains: [ours.example]
"""
ONE_CLIENT = TWO_CLIENTS.split("  - client_id: globex")[0] + "staff:\n  domains: [ours.example]\n"


@pytest.fixture
def directory_topic(broker: str) -> Iterator[str]:
    """A compacted one-partition topic like directory.v1, with a random name."""
    name = f"test-directory-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=15_000)
    admin.create_topics([NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    yield name
    admin.delete_topics([name])
    admin.close()


def _shinrai(broker: str, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"SHINRAI_KAFKA__BOOTSTRAP": broker})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_publish_show_and_prune(broker: str, directory_topic: str, tmp_path: Path) -> None:
    two = tmp_path / "two.yaml"
    two.write_text(TWO_CLIENTS)
    out = _shinrai(broker, "directory", "publish", str(two), "--topic", directory_topic)
    assert "2 clients" in out

    shown = _shinrai(broker, "directory", "show", "--topic", directory_topic, "--json")
    assert ClientDirectory.model_validate_json(shown) == load_directory(two)

    one = tmp_path / "one.yaml"
    one.write_text(ONE_CLIENT)
    out = _shinrai(broker, "directory", "publish", str(one), "--topic", directory_topic)
    assert "kept 1 key(s) not in the file" in out
    assert "globex" in out
    shown = _shinrai(broker, "directory", "show", "--topic", directory_topic, "--json")
    assert {c.client_id for c in ClientDirectory.model_validate_json(shown).clients} == {
        "acme",
        "globex",
    }

    out = _shinrai(broker, "directory", "publish", str(one), "--topic", directory_topic, "--prune")
    assert "deleted 1: globex" in out
    shown = _shinrai(broker, "directory", "show", "--topic", directory_topic, "--json")
    assert ClientDirectory.model_validate_json(shown) == load_directory(one)

    table = _shinrai(broker, "directory", "show", "--topic", directory_topic)
    assert "1 clients" in table
    assert "acme" in table


def test_publish_reports_a_bad_file(broker: str, directory_topic: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clients:\n  - client_id: x\n    name: X\n")  # owner missing
    result = CliRunner().invoke(
        main,
        ["directory", "publish", str(bad), "--topic", directory_topic],
        env={"SHINRAI_KAFKA__BOOTSTRAP": broker},
    )
    assert result.exit_code == 1
    assert "owner" in result.output


def test_a_csv_directory_with_staff_and_group_rows_publishes_them(
    broker: str, directory_topic: str, tmp_path: Path
) -> None:
    path = tmp_path / "clients.csv"
    path.write_text(
        "kind,client_id,name,domains,addresses,phone_numbers,owner\n"
        "staff,,Support,ours.example,,+14155550199,\n"
        "staff,,Kim,,kim@gmail.com,,\n"
        "group,,users list,,users@lists.ours.example,,\n"
        ",bob@mail.example,,,,,owner@ours.example\n"
    )
    _shinrai(broker, "directory", "publish", str(path), "--topic", directory_topic)
    shown = ClientDirectory.model_validate_json(
        _shinrai(broker, "directory", "show", "--topic", directory_topic, "--json")
    )
    assert shown == load_directory(path)
    assert shown.staff.groups == ("users@lists.ours.example",)
    assert [c.client_id for c in shown.clients] == ["bob_at_mail.example"]
    table = _shinrai(broker, "directory", "show", "--topic", directory_topic)
    assert "1 members, 1 groups" in table
