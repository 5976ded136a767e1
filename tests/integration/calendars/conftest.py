"""A real Radicale CalDAV server on loopback (temp storage, htpasswd users), per test module.

Radicale comes from PyPI (the dev extras). When it is missing or does not start the tests fail
with the reason: a calendar connector that was not tested must never look like one that passed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

USER, PASSWORD = "ann", "radicale-test-password"


class RadicaleServer:
    """A Radicale process on a fixed loopback port and storage folder (restartable)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.user, self.password = USER, PASSWORD
        (home / "users").write_text(f"{USER}:{PASSWORD}\n")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = home / "config"
        self.config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {home / 'users'}\n"
            "htpasswd_encryption = plain\n"
            "delay = 0\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {home / 'collections'}\n"
            "[logging]\n"
            "level = warning\n"
        )
        self.log = home / "radicale.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers HTTP (fail, never skip, when it cannot)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"radicale exited: {self.log.read_text()[-2000:]}", pytrace=False)
            try:
                httpx.get(f"{self.url}/.web/", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("radicale did not answer within 30 s", pytrace=False)
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """Start Radicale on 127.0.0.1 with htpasswd auth and owner-only rights; stop it after."""
    try:
        import radicale as _radicale  # noqa: F401  (only checks that it is installed)
    except ImportError:
        pytest.fail("radicale is not installed: pip install -e '.[dev]'", pytrace=False)
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
