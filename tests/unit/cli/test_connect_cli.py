"""``shinrai connect``: a bad configuration is one line naming the entry and field, before any
connection is tried."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from shinrai.cli import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "mailboxes:\n  - {name: support, host: h, user: u, owner: a@b.c, port: 0,"
            " password_env: X}\n",
            "mailboxes['support'].port: Input should be greater than 0",
        ),
        (
            "mailboxes:\n  - {name: support, host: h, user: u, owner: a@b.c}\n",
            "set exactly one of password_env or password_command",
        ),
        ("mailboxes: []\n", "nothing to follow"),
    ],
)
def test_a_bad_configuration_is_one_error_line(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "connect.yaml"
    config.write_text(text)
    result = CliRunner().invoke(main, ["connect", "--config", str(config), "--metrics-port", "0"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {config}: ")
    assert expected in lines[0]


def test_a_password_variable_that_is_not_set_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHINRAI_TEST_UNSET_PASSWORD", raising=False)
    config = tmp_path / "connect.yaml"
    config.write_text(
        "mailboxes:\n  - {name: support, host: 127.0.0.1, user: u, owner: a@b.c,"
        " password_env: SHINRAI_TEST_UNSET_PASSWORD}\n"
    )
    # The broker is not needed to find this out: no connection is tried before the secrets.
    result = CliRunner().invoke(
        main,
        ["connect", "--config", str(config), "--metrics-port", "0"],
        env={"SHINRAI_KAFKA__BOOTSTRAP": "127.0.0.1:1"},
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "Error: SHINRAI_TEST_UNSET_PASSWORD is not set (password of u)"
    ]
