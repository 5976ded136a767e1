"""``shinrai alerts send-test --url`` against a stdlib HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from click.testing import CliRunner

from shinrai.cli import main
from sinks.alerts.errors import SignatureInvalid
from sinks.alerts.signing import verify_signature

pytestmark = pytest.mark.integration

SECRET = "send-test-secret"


class _Handler(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []  # answers in order; the last one repeats
    seen: ClassVar[list[tuple[dict[str, str], bytes, str | None]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            verify_signature(
                SECRET,
                self.headers["X-Shinrai-Timestamp"],
                body,
                self.headers["X-Shinrai-Signature"],
            )
            error = None
        except SignatureInvalid as exc:
            error = exc.reason
        self.seen.append((dict(self.headers), body, error))
        status = self.statuses[min(len(self.seen) - 1, len(self.statuses) - 1)]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts on what was received instead."""


@pytest.fixture
def stdlib_receiver() -> Iterator[type[_Handler]]:
    """A ThreadingHTTPServer on an ephemeral port; the handler class carries its state."""
    handler = type("Handler", (_Handler,), {"statuses": [200], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_send_test_delivers_a_signed_sample(stdlib_receiver: type[_Handler]) -> None:
    stdlib_receiver.statuses = [503, 200]
    url = stdlib_receiver.url  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        main, ["alerts", "send-test", "--url", url], env={"SHINRAI_ALERTS__SIGNING_SECRET": SECRET}
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("attempt 1: retry status=503")
    assert lines[1].startswith("attempt 2: delivered status=200")
    assert lines[-1] == "delivered"
    assert [error for _, _, error in stdlib_receiver.seen] == [None, None]
    headers, body, _ = stdlib_receiver.seen[-1]
    assert json.loads(body)["idempotency_key"] == headers["Idempotency-Key"]
    assert SECRET not in result.output  # the secret is never printed


def test_send_test_fails_loudly_on_a_permanent_error(stdlib_receiver: type[_Handler]) -> None:
    stdlib_receiver.statuses = [404]
    url = stdlib_receiver.url  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        main,
        ["alerts", "send-test", "--url", url, "--format", "slack"],
        env={"SHINRAI_ALERTS__SIGNING_SECRET": SECRET},
    )
    assert result.exit_code == 1
    assert "attempt 1: failed status=404" in result.stdout
    assert "text" in json.loads(stdlib_receiver.seen[0][1])


def test_send_test_without_a_secret_is_a_clean_error(stdlib_receiver: type[_Handler]) -> None:
    url = stdlib_receiver.url  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        main, ["alerts", "send-test", "--url", url], env={"SHINRAI_ALERTS__SIGNING_SECRET": ""}
    )
    assert result.exit_code == 1
    assert "signing secret is empty" in result.stderr
    assert stdlib_receiver.seen == []
