"""What every command shares at run time: the settings (read once) and how bad ones are reported.

The root group puts one :class:`CliState` into ``ctx.obj``; a command asks for the settings with
:func:`get_settings`. They are read from the environment on the first request and kept for the
rest of the invocation, so a command and the helpers it calls see the same values, and a command
that needs none (``replay``, ``topics list``, ``--help``) never fails on an unrelated variable.

A bad ``SHINRAI_*`` variable is the operator's input, not a bug: it becomes one line naming the
variable and the reason, exit status 2 (click's status for bad usage), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pydantic import ValidationError

    from shinrai.settings import Settings

ENV_PREFIX = "SHINRAI_"


class SettingsInvalid(click.ClickException):
    """The environment holds a setting that does not validate (exit status 2)."""

    exit_code = 2


@dataclass
class CliState:
    """Per-invocation state of the ``shinrai`` command, kept in the click context's ``obj``."""

    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The settings, read from the environment on first use (SettingsInvalid if bad)."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


def get_settings() -> Settings:
    """The settings of the running ``shinrai`` invocation (read once per invocation)."""
    ctx = click.get_current_context()
    state = ctx.find_object(CliState)
    if state is None:  # a command invoked on its own, without the root group (tests)
        state = ctx.ensure_object(CliState)
    return state.settings


def load_settings() -> Settings:
    """``Settings()`` from the environment; a bad variable raises :class:`SettingsInvalid`."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from shinrai.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsInvalid(f"invalid settings: {describe_validation_error(exc)}") from None
    except SettingsError as exc:  # a complex (JSON) value that does not parse
        raise SettingsInvalid(f"invalid settings: {_settings_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line: each failing variable (``SHINRAI_KAFKA__TOPIC_PARTITIONS``) and its reason.

    The offending value is left out on purpose: it may be a password or a token.
    """
    from shinrai.settings import Settings

    parts: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        variable, inner = env_variable(Settings, error["loc"])
        where = f"{variable}{inner}" if variable else f"{ENV_PREFIX}* settings"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def env_variable(model: Any, loc: tuple[int | str, ...]) -> tuple[str, str]:
    """The environment variable a pydantic error location comes from, and the rest of it.

    ``("kafka", "topic_partitions")`` is ``SHINRAI_KAFKA__TOPIC_PARTITIONS``; a location that goes
    on inside a JSON value (``("gateway", "bearer_tokens", 0)``) keeps ``[0]`` as the rest.
    """
    names: list[str] = []
    rest = list(loc)
    while rest and isinstance(rest[0], str) and rest[0] in getattr(model, "model_fields", {}):
        name = rest.pop(0)
        assert isinstance(name, str)
        names.append(name)
        model = model.model_fields[name].annotation
    inner = "".join(f"[{part}]" for part in rest)
    return (ENV_PREFIX + "__".join(names).upper() if names else ""), inner


def _settings_error(exc: Exception) -> str:
    # pydantic-settings says: error parsing value for field "gateway" from source "..."
    text = str(exc)
    marker = 'for field "'
    if marker in text:
        name = text.split(marker, 1)[1].split('"', 1)[0]
        return f"a {ENV_PREFIX}{name.upper()}__* variable holds a value that is not valid JSON"
    return text
