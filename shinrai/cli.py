"""The ``shinrai`` command line.

Subcommands live one per module in ``shinrai/commands/``; each module exposes a ``command``
(a click command or group) and is discovered here, so adding a command never edits this file.
Modules import heavy dependencies inside their functions to keep ``shinrai --help`` fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from shinrai import __version__, commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="shinrai")
def main() -> None:
    """Shinrai: keep every client's response SLA across email, phone and meetings.

    Settings come from SHINRAI_* environment variables (see README); every command has --help.
    """


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            main.add_command(command)


_register()
