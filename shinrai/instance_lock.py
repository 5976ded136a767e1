"""One running instance per namespace: an advisory ``fcntl`` lock file that names its holder.

A second ``shinrai demo`` used to reset (delete) every ``*.demo`` topic before it failed on the
embedded ClickHouse lock, and the first then lost its topics under a live consumer group. Now
every long-running job takes its locks BEFORE it touches anything: a lock file per directory
(the worker's data directory, an embedded ClickHouse directory) and, for the demo, per topic
namespace (broker address + topic suffix). The file records the holder (pid, port, command) so
the refusal names the running instance in one line.

The kernel drops an ``flock`` when its process dies (even on SIGKILL), so a crashed run never
leaves a stale lock behind: the file stays, the lock does not. Locks are re-entrant within one
process (the demo holds the data directory lock and then starts a worker that takes it again;
in-process tests run several workers), and they guard processes on one machine only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shinrai.errors import ShinraiError

__all__ = [
    "InstanceLock",
    "InstanceLocked",
    "LockHolder",
    "directory_lock",
    "namespace_lock",
    "namespace_lock_dir",
]


class InstanceLocked(ShinraiError):
    """Another process holds the lock: its message names that process (pid, port, command)."""

    def __init__(self, message: str, holder: LockHolder | None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a lock, as recorded in its file."""

    pid: int
    command: str
    port: int | None = None

    def describe(self) -> str:
        """``shinrai demo (pid 123, port 8088)``."""
        where = f", port {self.port}" if self.port is not None else ""
        return f"{self.command} (pid {self.pid}{where})"


@dataclass
class _Held:
    handle: IO[str]
    count: int


# Re-entrant per process: flock conflicts between two open files of one process too.
_HELD: dict[Path, _Held] = {}


class InstanceLock:
    """An exclusive lock on ``path`` guarding ``what`` (words for the refusal message)."""

    def __init__(self, path: Path, what: str) -> None:
        """Remember the lock file; nothing is opened until :meth:`acquire`."""
        self.path = path.absolute()
        self.what = what
        self._mine = False

    @property
    def held(self) -> bool:
        """Whether this object holds (a share of) the lock."""
        return self._mine

    def acquire(self, *, command: str, port: int | None = None) -> InstanceLock:
        """Take the lock or raise :class:`InstanceLocked` naming the holder. Returns ``self``."""
        if self._mine:
            return self
        held = _HELD.get(self.path)
        if held is not None:
            held.count += 1
            self._mine = True
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise InstanceLocked(
                f"cannot create the lock file {self.path} for {self.what}: {exc.strerror}", None
            ) from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            holder = read_holder(self.path)
            running = holder.describe() if holder is not None else "another process"
            raise InstanceLocked(
                f"{running} is already running on {self.what}; stop it first "
                f"(lock file {self.path})",
                holder,
            ) from None
        except BaseException:
            handle.close()
            raise
        _HELD[self.path] = _Held(handle, 1)
        self._mine = True
        self._write(LockHolder(os.getpid(), command, port))
        return self

    def record_port(self, port: int | None, command: str) -> None:
        """Record the port the holder serves on, once it is bound (e.g. ``--metrics-port 0``).

        Only the lock's first taker writes: a worker started inside the demo does not replace
        the demo's record (command and dashboard port) with its own."""
        held = _HELD.get(self.path)
        if self._mine and held is not None and held.count == 1:
            self._write(LockHolder(os.getpid(), command, port))

    def _write(self, holder: LockHolder) -> None:
        held = _HELD[self.path]
        record = {"pid": holder.pid, "command": holder.command, "port": holder.port}
        handle = held.handle
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record) + "\n")
        handle.flush()

    def release(self) -> None:
        """Give the lock back (the file stays: removing it would race a waiting taker)."""
        if not self._mine:
            return
        self._mine = False
        held = _HELD.get(self.path)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _HELD[self.path]
        with contextlib.suppress(OSError):
            held.handle.seek(0)
            held.handle.truncate()
        fcntl.flock(held.handle.fileno(), fcntl.LOCK_UN)
        held.handle.close()

    def __enter__(self) -> InstanceLock:
        """The lock must already be acquired; releases on exit."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Release."""
        self.release()


def read_holder(path: Path) -> LockHolder | None:
    """The holder recorded in a lock file (None when empty or unreadable)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    port = record.get("port")
    return LockHolder(
        record["pid"],
        str(record.get("command") or "shinrai"),
        port if isinstance(port, int) else None,
    )


def directory_lock(directory: Path, what: str) -> InstanceLock:
    """The lock of a data directory: a hidden file beside it (``.<name>.lock``), so a job may
    empty or delete the directory itself while it holds the lock."""
    directory = directory.absolute()
    return InstanceLock(directory.parent / f".{directory.name}.lock", f"{what} {directory}")


def namespace_lock_dir() -> Path:
    """Where topic-namespace locks live: the user's cache (``$XDG_CACHE_HOME/shinrai/locks``),
    or the temporary directory when the cache cannot be written (a read-only home)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "shinrai" / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"shinrai-locks-{os.getuid()}"
    return folder


def namespace_lock(bootstrap: str, suffix: str, *, lock_dir: Path | None = None) -> InstanceLock:
    """The lock of a topic namespace: the topics ``*<suffix>`` on the brokers ``bootstrap``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{bootstrap}{suffix or '-'}")
    path = (lock_dir or namespace_lock_dir()) / f"topics-{name}.lock"
    return InstanceLock(path, f"the topics *{suffix} on {bootstrap}")
