"""The ``shinrai connect`` configuration file: which mailboxes and calendars to follow.

One YAML file, validated at start; every error names the entry and the field::

    state_dir: .data/connect          # checkpoints (UIDVALIDITY/UID, sync tokens); default shown
    mailboxes:
      - name: support                 # unique; used in metrics, logs and checkpoints
        host: imap.example.com
        port: 993                     # default 993 with TLS, 143 without
        tls: true                     # default; false only for a loopback test server
        ca_file: /etc/ssl/team-ca.pem # optional extra CA to trust
        user: support@example.com
        password_env: SUPPORT_IMAP_PASSWORD   # or password_command: ["oauth2-token", "support"]
        auth: password                # or xoauth2 (the command prints an access token)
        owner: hanako@example.com     # the staff person the mailbox belongs to
        folders: [INBOX, Sent]
    calendars:
      - name: hanako
        url: https://caldav.example.com/hanako/calendar/
        user: hanako
        password_env: HANAKO_CALDAV_PASSWORD
        owner: hanako@example.com

Secrets are never written in the file: a password comes from an environment variable or a
command (a token helper), read when a connection is opened, and registered for redaction.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shinrai.errors import ConfigError
from shinrai.logging import register_secrets


class Credentials(BaseModel):
    """Where a source's secret comes from: an environment variable or a command's output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str = Field(min_length=1)
    password_env: str | None = Field(default=None, description="Variable holding the password")
    password_command: tuple[str, ...] | None = Field(
        default=None, description="Command printing the password or OAuth2 access token"
    )

    @model_validator(mode="after")
    def _one_secret_source(self) -> Credentials:
        if (self.password_env is None) == (self.password_command is None):
            raise ValueError("set exactly one of password_env or password_command")
        return self

    def secret(self) -> str:
        """Read the secret now (a token command may return a fresh token each time)."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(f"{self.password_env} is not set (password of {self.user})")
        else:
            assert self.password_command is not None
            try:
                done = subprocess.run(  # the user's own configured token helper
                    list(self.password_command), capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(f"password_command of {self.user} failed: {exc}") from None
            if done.returncode != 0 or not done.stdout.strip():
                raise ConfigError(
                    f"password_command of {self.user} exited {done.returncode} without a secret"
                )
            value = done.stdout.strip()
        register_secrets(value)
        return value


class MailboxSource(Credentials):
    """One IMAP mailbox to follow."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, gt=0, lt=65536)
    tls: bool = True
    ca_file: Path | None = None
    auth: Literal["password", "xoauth2"] = "password"
    owner: str = Field(min_length=3, description="Staff address the mailbox belongs to")
    folders: tuple[str, ...] = ("INBOX",)
    poll_interval_s: float = Field(default=30.0, gt=0, description="When IDLE is not offered")

    @property
    def effective_port(self) -> int:
        """The port to connect to: the configured one, else 993 (TLS) or 143."""
        return self.port or (993 if self.tls else 143)


class CalendarSource(Credentials):
    """One CalDAV calendar to follow."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1, description="The calendar collection URL")
    ca_file: Path | None = None
    owner: str = Field(min_length=3, description="Staff address the calendar belongs to")
    poll_interval_s: float = Field(default=60.0, gt=0)


class ConnectConfig(BaseModel):
    """Everything ``shinrai connect`` follows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path = Path(".data/connect")
    mailboxes: tuple[MailboxSource, ...] = ()
    calendars: tuple[CalendarSource, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> ConnectConfig:
        names = [m.name for m in self.mailboxes] + [c.name for c in self.calendars]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"source name {name!r} is used twice")
            seen.add(name)
        if not names:
            raise ValueError("no mailboxes and no calendars: nothing to follow")
        return self


def _location(config: dict[str, object], loc: tuple[int | str, ...]) -> str:
    """``mailboxes[0].port`` → ``mailboxes 'support' port`` when the entry has a name."""
    parts: list[str] = []
    node: object = config
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            name = node.get("name") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{name!r}]" if name else f"{parts[-1]}[{step}]"
        else:
            node = node.get(step) if isinstance(node, dict) else None
            parts.append(str(step))
    return ".".join(parts) or "(file)"


def load_config(path: Path) -> ConnectConfig:
    """Read and validate the YAML file; raise ``ConfigError`` naming the entry and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with mailboxes/calendars")
    try:
        return ConnectConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _location(raw, tuple(first["loc"]))
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
