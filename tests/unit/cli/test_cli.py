"""The ``shinrai`` application shell: command table, settings read once, one error mapping."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shinrai import commands
from shinrai.cli import COMMANDS, ShinraiGroup, main
from shinrai.commands._context import CliState, env_variable, get_settings
from shinrai.errors import ConfigError, KafkaUnavailable, ShinraiError
from shinrai.settings import Settings

pytestmark = pytest.mark.unit

BAD = {"SHINRAI_KAFKA__TOPIC_PARTITIONS": "abc"}


def _settings_commands(tmp_path: Path) -> list[list[str]]:
    """One valid invocation of every command (none gets past the settings here)."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"")
    clients = tmp_path / "clients.yaml"
    clients.write_text("clients: []\n")
    return [
        ["alerts", "verify", "--timestamp", "1", "--signature", "x", "-"],
        ["alerts", "send-test", "--url", "http://127.0.0.1:1/"],
        ["backfill", str(events), "--format", "jsonl"],
        ["connect", "--config", str(clients)],
        ["dashboard"],
        ["db", "migrate"],
        ["db", "query", "kpis"],
        ["demo", "--duration", "0"],
        ["demodata", "--out", str(tmp_path / "demo")],
        ["directory", "publish", str(clients)],
        ["directory", "show"],
        ["gateway"],
        ["kafka", "status"],
        ["produce", str(events), "--format", "jsonl", "--dry-run"],
        ["replay", str(events)],
        ["schemas", "export"],
        ["topics", "create"],
        ["topics", "list"],
        ["worker"],
    ]


def test_the_command_table_lists_every_command_module() -> None:
    modules = [m.name for m in pkgutil.iter_modules(commands.__path__)]
    exposed = [
        importlib.import_module(f"{commands.__name__}.{name}").command
        for name in modules
        if not name.startswith("_")  # shared helpers, not commands
    ]
    assert sorted(c.name or "" for c in exposed) == sorted(c.name or "" for c in COMMANDS)
    assert all(any(c is t for t in COMMANDS) for c in exposed)
    assert set(main.commands) == {c.name for c in COMMANDS}


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command.name} " in result.output


def test_a_bad_setting_is_one_line_naming_the_variable_in_every_command(tmp_path: Path) -> None:
    # Also with a valid command line (the subprocess test in test_cli_errors.py runs each bare).
    for argv in _settings_commands(tmp_path):
        result = CliRunner().invoke(main, argv, env=BAD)
        assert result.exit_code == 2, (argv, result.output)
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "Error: invalid settings: SHINRAI_KAFKA__TOPIC_PARTITIONS: Input should be a valid "
            "integer, unable to parse string as an integer"
        ], argv
        assert "Traceback" not in result.output
        assert "abc" not in result.output  # values may be secrets: never echoed


def test_a_bad_json_setting_names_its_group() -> None:
    result = CliRunner().invoke(
        main, ["topics", "create"], env={"SHINRAI_GATEWAY__BEARER_TOKENS": "not json"}
    )
    assert result.exit_code == 2
    assert "SHINRAI_GATEWAY__*" in result.stderr
    assert "Traceback" not in result.output


def test_every_failing_variable_is_named() -> None:
    env = {**BAD, "SHINRAI_WORKER__SESSION_TIMEOUT_S": "1"}
    result = CliRunner().invoke(main, ["topics", "create"], env=env)
    assert result.exit_code == 2
    assert "SHINRAI_KAFKA__TOPIC_PARTITIONS: " in result.stderr
    assert "SHINRAI_WORKER__SESSION_TIMEOUT_S: Input should be greater than or equal to 6" in (
        result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_command_without_settings_still_refuses_a_bad_variable() -> None:
    result = CliRunner().invoke(main, ["topics", "list"], env=BAD)
    assert result.exit_code == 2, result.output
    assert "SHINRAI_KAFKA__TOPIC_PARTITIONS" in result.stderr


def test_help_needs_no_settings() -> None:
    for argv in (["topics", "list", "--help"], ["worker", "-h"], ["kafka", "--help"]):
        result = CliRunner().invoke(main, argv, env=BAD)
        assert result.exit_code == 0, (argv, result.output)
        assert "Usage:" in result.output


def test_environment_variable_of_an_error_location() -> None:
    assert env_variable(Settings, ("kafka", "topic_partitions")) == (
        "SHINRAI_KAFKA__TOPIC_PARTITIONS",
        "",
    )
    assert env_variable(Settings, ("log_level",)) == ("SHINRAI_LOG_LEVEL", "")
    assert env_variable(Settings, ("gateway", "bearer_tokens", 0)) == (
        "SHINRAI_GATEWAY__BEARER_TOKENS",
        "[0]",
    )
    assert env_variable(Settings, ()) == ("", "")


def test_a_shinrai_error_in_any_command_is_one_line_and_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> Settings:
        raise KafkaUnavailable("cannot reach the thing")

    monkeypatch.setattr("shinrai.commands._context.load_settings", unavailable)
    for argv in _settings_commands(tmp_path):
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 1, (argv, result.output)
        assert result.stderr.strip().splitlines() == ["Error: cannot reach the thing"], argv
        assert "Traceback" not in result.output


def test_a_shinrai_error_raised_deep_in_a_command_is_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"")

    def broken(*_args: object, **_kwargs: object) -> object:
        raise ConfigError("policy p1 names unknown calendar c9")

    monkeypatch.setattr("engine.replay.replay", broken)
    result = CliRunner().invoke(main, ["replay", str(events)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["Error: policy p1 names unknown calendar c9"]


def _group(failure: BaseException | None) -> click.Group:
    """A root like ``main`` with one subcommand, ``run``, raising ``failure``."""

    @click.group(cls=ShinraiGroup)
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.ensure_object(CliState)

    @root.command()
    def run() -> None:
        if failure is not None:
            raise failure
        first = get_settings()
        assert get_settings() is first  # read once per invocation
        click.echo(f"partitions={first.kafka.topic_partitions}")

    return root


def test_settings_are_read_once_per_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = Settings

    def counting() -> Settings:
        calls.append(1)
        return real()

    monkeypatch.setattr("shinrai.settings.Settings", counting)
    result = CliRunner().invoke(_group(None), ["run"], env={"SHINRAI_KAFKA__TOPIC_PARTITIONS": "3"})
    assert (result.exit_code, result.output, len(calls)) == (0, "partitions=3\n", 1)


def test_a_hint_is_printed_on_its_own_line() -> None:
    error = KafkaUnavailable("cannot connect", hint="start one: shinrai kafka start")
    result = CliRunner().invoke(_group(error), ["run"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: cannot connect",
        "Hint: start one: shinrai kafka start",
    ]


def test_an_exception_group_of_shinrai_errors_is_one_line_each() -> None:
    group = ExceptionGroup(
        "runners", [KafkaUnavailable("kafka down"), ExceptionGroup("x", [ShinraiError("sink")])]
    )
    result = CliRunner().invoke(_group(group), ["run"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["Error: kafka down", "Error: sink"]


def test_a_bug_keeps_its_traceback() -> None:
    mixed = ExceptionGroup("runners", [KafkaUnavailable("kafka down"), KeyError("bug")])
    result = CliRunner().invoke(_group(mixed), ["run"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ExceptionGroup)  # not swallowed into an error line
    plain = CliRunner().invoke(_group(ValueError("bug")), ["run"])
    assert isinstance(plain.exception, ValueError)


def test_ctrl_c_exits_130() -> None:
    result = CliRunner().invoke(_group(KeyboardInterrupt()), ["run"])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr


def test_a_worker_configuration_error_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_settings: Settings) -> object:
        raise ConfigError("the alert sink needs SHINRAI_ALERTS__SIGNING_SECRET")

    monkeypatch.setattr("shinrai.jobs.worker.build_worker", refuse)
    monkeypatch.setattr("shinrai.logging.configure", lambda *_a, **_k: None)
    result = CliRunner().invoke(main, ["worker", "--no-metrics"])
    assert result.exit_code == 2  # the worker's documented status for bad configuration
    assert result.stderr.strip().splitlines() == [
        "Error: configuration error: the alert sink needs SHINRAI_ALERTS__SIGNING_SECRET"
    ]
