"""A bad ``SHINRAI_*`` variable, through the real ``shinrai`` program, in every command.

Each command of the command table (every leaf of every group, found by walking
:data:`shinrai.cli.COMMANDS`, so a new command is covered without editing this file) runs as
``python -m shinrai <command>`` in a subprocess, with nothing else on its command line: the
settings are checked before the command parses its arguments, so the one error line is the
settings' whatever else the command would need.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from shinrai.cli import COMMANDS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def leaves(commands: tuple[click.Command, ...] | list[click.Command]) -> list[tuple[str, ...]]:
    """The command line (names) of every runnable command under ``commands``."""
    out: list[tuple[str, ...]] = []
    for command in commands:
        name = command.name or ""
        if isinstance(command, click.Group):
            out.extend((name, *rest) for rest in leaves(list(command.commands.values())))
        else:
            out.append((name,))
    return out


def run_shinrai(
    argv: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m shinrai argv`` with this checkout first on the path, stdin closed."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SHINRAI_")}
    full.update(env, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "shinrai", *argv],
        env=full,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_walk_finds_nested_commands() -> None:
    found = leaves(COMMANDS)
    assert ("topics", "create") in found
    assert ("kafka", "start") in found
    assert ("worker",) in found
    assert not any(name == "topics" for name, *_rest in found if not _rest)


@pytest.mark.parametrize("argv", leaves(COMMANDS), ids=" ".join)
def test_a_bad_setting_is_one_line_naming_the_variable(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    result = run_shinrai(list(argv), {"SHINRAI_KAFKA__TOPIC_PARTITIONS": "abc"}, tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: invalid settings: SHINRAI_KAFKA__TOPIC_PARTITIONS: ")
    assert "kafka.topic_partitions" not in result.stderr
    assert "Traceback" not in result.stderr
    assert "abc" not in result.stderr  # a value may be a secret: never echoed
    assert result.stdout == ""
    assert not list(tmp_path.iterdir())  # nothing was started or written


def test_help_works_with_a_bad_setting(tmp_path: Path) -> None:
    result = run_shinrai(["topics", "create", "--help"], {"SHINRAI_LOG_JSON": "maybe"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
