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
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

USER, PASSWORD = "ann", "radicale-test-password"


@dataclass(frozen=True)
class RadicaleServer:
    """Where the server listens and who may log in."""

    url: str
    user: str
    password: str
    log: Path


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
    home = tmp_path_factory.mktemp("radicale")
    (home / "users").write_text(f"{USER}:{PASSWORD}\n")
    port = _free_port()
    config = home / "config"
    config.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
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
    log = home / "radicale.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"radicale exited at start: {log.read_text()[-2000:]}", pytrace=False)
            try:
                httpx.get(f"{url}/.web/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("radicale did not answer within 30 s", pytrace=False)
                time.sleep(0.1)
        yield RadicaleServer(url=url, user=USER, password=PASSWORD, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
