"""A ``shinrai demo`` (or ``shinrai worker``) in a subprocess, its output read line by line.

Each run is a real process (chdb binds one data directory per process, and signals, locks and
exit codes are what is under test); a reader thread collects its merged stdout/stderr so a test
can wait for a line without blocking on the pipe.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

SUMMARY = re.compile(
    r"demo: (\d+) historic \+ (\d+)/(\d+) scheduled events; (\d+) facts in ClickHouse; "
    r"(\d+) alerts received"
)
NOISE = ("Traceback", "PartitionsMismatch", "GroupCoordinatorNotAvailable", "wait_empty")


def free_port() -> int:
    """A TCP port nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_env(bootstrap: str, root: Path, **extra: str) -> dict[str, str]:
    """The environment of a demo whose state lives under ``root`` (its own chdb and data)."""
    return {
        **os.environ,
        "SHINRAI_KAFKA__BOOTSTRAP": bootstrap,
        "SHINRAI_CLICKHOUSE__URL": f"chdb://{root / 'chdb'}",
        "SHINRAI_WORKER__DATA_DIR": str(root / "worker"),
        "SHINRAI_WORKER__METRICS_PORT": "0",
        **extra,
    }


class Proc:
    """One ``python -m shinrai ...`` process and everything it printed so far."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        """Start it (stdout and stderr merged, read by a thread)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shinrai", *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:  # closed when the process is gone
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        """The first line matching ``pattern``; fails with the output when it does not come."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines[:]
            for line in lines[seen:]:
                if regex.search(line):
                    return line
            seen = len(lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                time.sleep(0.2)  # let the reader drain the pipe
                if len(self.lines) == seen:
                    break
            time.sleep(0.1)
        raise AssertionError(
            f"no line matching {pattern!r} within {timeout_s} s "
            f"(exit {self.proc.poll()}):\n{self.output[-4000:]}"
        )

    def stop(self, sig: signal.Signals, timeout_s: float) -> tuple[int, float]:
        """Send ``sig``; (exit status, seconds it took). Killed and failed if it takes longer."""
        began = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"still running {timeout_s} s after {sig.name}:\n{self.output[-4000:]}"
            ) from None
        self._reader.join(timeout=5)
        return code, time.monotonic() - began

    def wait(self, timeout_s: float) -> int:
        """Wait for the exit status (killed and failed after ``timeout_s``)."""
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"still running after {timeout_s} s:\n{self.output[-4000:]}"
            ) from None
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """SIGKILL, if it still runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
