"""The ``shinrai`` command line: the command table and the one error mapping.

Each subcommand lives in its own module of ``shinrai/commands/`` and exposes its click command
as ``command``; :data:`COMMANDS` below lists them all, so what ``shinrai`` can do is read here,
not discovered at run time. Command modules import heavy dependencies inside their functions,
which keeps ``shinrai --help`` fast.

Errors are mapped once, by :class:`ShinraiGroup`: an error Shinrai raises on purpose
(:class:`~shinrai.errors.ShinraiError`, alone or inside an exception group) is one ``Error:``
line on stderr (plus a ``Hint:`` line when it carries one) and exit status 1; a bad ``SHINRAI_*``
variable is one line naming it, status 2, in every command (the settings are validated before any
command runs, also one that reads none: a bad variable is the operator's mistake wherever it is
met; ``--help`` still works); Ctrl-C is status 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

from shinrai import __version__
from shinrai.commands import (
    alerts,
    backfill,
    connect,
    dashboard,
    db,
    demo,
    demodata,
    directory,
    gateway,
    kafka,
    produce,
    replay,
    schemas,
    topics,
    worker,
)
from shinrai.commands._context import CliState
from shinrai.errors import ShinraiError

COMMANDS: tuple[click.Command, ...] = (
    alerts.command,
    backfill.command,
    connect.command,
    dashboard.command,
    db.command,
    demo.command,
    demodata.command,
    directory.command,
    gateway.command,
    kafka.command,
    produce.command,
    replay.command,
    schemas.command,
    topics.command,
    worker.command,
)
"""Every ``shinrai`` subcommand (one per module of ``shinrai/commands``)."""

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C'd program


HELP_FLAGS = frozenset({"-h", "--help"})


class ShinraiGroup(click.Group):
    """The root group: maps Shinrai's own errors to clean exits for every subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Note whether the command line asks for help (help never needs the settings)."""
        ctx.meta["shinrai.help"] = not args or any(arg in HELP_FLAGS for arg in args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Validate the settings, run the subcommand; translate ShinraiError, groups of them
        and Ctrl-C."""
        try:
            if not ctx.meta.get("shinrai.help", False):
                # Before the subcommand parses its arguments: a bad SHINRAI_* variable is the
                # one line of every command, whatever else is wrong with its command line.
                _ = ctx.ensure_object(CliState).settings
            return super().invoke(ctx)
        except ShinraiError as exc:
            _fail(ctx, [exc])
        except BaseExceptionGroup as group:
            ours, rest = group.split(ShinraiError)
            if ours is None or rest is not None:
                raise
            _fail(ctx, _leaves(ours))
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(INTERRUPTED)


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _fail(ctx: click.Context, errors: list[BaseException]) -> NoReturn:
    """One ``Error:`` line per distinct error (and its hint), then exit status 1."""
    seen: set[str] = set()
    for exc in errors:
        line = str(exc) or type(exc).__name__
        if line in seen:
            continue
        seen.add(line)
        click.secho(f"Error: {line}", err=True, fg="red")
        hint = getattr(exc, "hint", None)
        if hint:
            click.echo(f"Hint: {hint}", err=True)
    ctx.exit(1)


@click.group(
    cls=ShinraiGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="shinrai")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Shinrai: keep every client's response SLA across email, phone and meetings.

    Settings come from SHINRAI_* environment variables (see README); every command has --help.
    """
    ctx.ensure_object(CliState)


for _command in COMMANDS:
    main.add_command(_command)
