"""Finding the process that holds an embedded ClickHouse directory, and where it serves.

chdb lets one process open a data directory. The worker that holds one serves the dashboard
and ``/api/sql``, and records where in ``<chdb dir>/shinrai-endpoint.json`` (pid, URL,
database, whether a login is needed; a few dozen bytes, removed when it stops), so
``shinrai dashboard`` and ``shinrai db query`` started beside it go through that endpoint
instead of failing on the lock. ``holder_pid`` reads the pid chdb itself writes in the
directory's ``status`` file, to say who holds it when no endpoint is recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "shinrai-endpoint.json"


@dataclass(frozen=True)
class Endpoint:
    """A running process's dashboard: ``url`` is reachable from this host."""

    pid: int
    url: str
    database: str
    login: bool


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (signal 0 probes without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def endpoint_file(chdb_dir: Path) -> Path:
    """Where the endpoint of the process holding ``chdb_dir`` is recorded."""
    return chdb_dir / FILE_NAME


def write_endpoint(chdb_dir: Path, endpoint: Endpoint) -> Path:
    """Record ``endpoint`` atomically (write, then rename); return the file."""
    chdb_dir.mkdir(parents=True, exist_ok=True)
    target = endpoint_file(chdb_dir)
    tmp = target.with_name(f".{FILE_NAME}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(endpoint)), encoding="utf-8")
    tmp.replace(target)
    return target


def remove_endpoint(chdb_dir: Path, pid: int) -> None:
    """Remove the record if it is ``pid``'s (a successor's record is left alone)."""
    found = _read(chdb_dir)
    if found is not None and found.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            endpoint_file(chdb_dir).unlink()


def _read(chdb_dir: Path) -> Endpoint | None:
    try:
        raw = json.loads(endpoint_file(chdb_dir).read_text(encoding="utf-8"))
        return Endpoint(
            pid=int(raw["pid"]),
            url=str(raw["url"]),
            database=str(raw["database"]),
            login=bool(raw["login"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_endpoint(chdb_dir: Path) -> Endpoint | None:
    """The recorded endpoint of a live process other than this one, else None."""
    found = _read(chdb_dir)
    if found is None or found.pid == os.getpid() or not pid_alive(found.pid):
        return None
    return found


def holder_pid(chdb_dir: Path) -> int | None:
    """The live process (not this one) named in chdb's ``status`` file, else None."""
    try:
        first = (chdb_dir / "status").read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    label, _, value = first.partition(":")
    if label.strip() != "PID" or not value.strip().isdigit():
        return None
    pid = int(value.strip())
    return pid if pid != os.getpid() and pid_alive(pid) else None
