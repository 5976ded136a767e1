"""XOAUTH2: the access token printed by ``password_command`` logs in; a refused token is one
clear error. Dovecot checks tokens against a loopback RFC 7662 introspection endpoint (the one
stand-in here: no identity provider runs on this machine; the IMAP side is the real server)."""

from __future__ import annotations

import json
import sys
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from producers.connectors.config import MailboxSource
from producers.connectors.imap import ConnectorFailed, open_connection
from producers.parsers.email import email_event_id
from tests.dovecot_server import DovecotServer, dovecot_binary
from tests.integration.streams.processor_harness import Env, processor_env, wait_until
from tests.tls_ca import CertAuthority

from .conftest import RunningConnector, connect_config, mailbox_entry, message, read_event_ids

pytestmark = pytest.mark.integration
_ = processor_env

GOOD_TOKEN = "ya29.test-access-token"


class Introspection:
    """Answers Dovecot's token introspection: GOOD_TOKEN is active for ``user``."""

    def __init__(self) -> None:
        self.user = ""
        self.tokens: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                token = (form.get("token") or [""])[0]
                owner.tokens.append(token)
                body = {"active": token == GOOD_TOKEN, "username": owner.user}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def oauth_dovecot(test_ca: CertAuthority) -> Iterator[tuple[DovecotServer, Introspection]]:
    if dovecot_binary() is None:
        pytest.fail(
            "dovecot is not installed: run `bash deploy/ci/install-dovecot.sh`", pytrace=False
        )
    introspection = Introspection()
    server = DovecotServer(test_ca, oauth2_introspection_url=introspection.url)
    server.start()
    yield server, introspection
    server.close()
    introspection.close()


def _token_command(token: str) -> list[str]:
    return [sys.executable, "-c", f"print({token!r})"]


async def test_an_xoauth2_token_from_the_command_logs_in_and_mail_flows(
    oauth_dovecot: tuple[DovecotServer, Introspection],
    processor_env: Callable[[], Env],
    tmp_path: Path,
) -> None:
    server, introspection = oauth_dovecot
    env = processor_env()
    user, _ = server.add_user()
    introspection.user = user
    mid, raw = message(subject="over oauth")
    server.append(user, "INBOX", [raw])
    entry = mailbox_entry(server, user)
    del entry["password_env"]
    entry.update(auth="xoauth2", password_command=_token_command(GOOD_TOKEN))
    connector = RunningConnector(
        connect_config(tmp_path, entry), env.kafka, env.topics.interactions, env.topics.dlq
    )
    await connector.start()
    try:
        await wait_until(lambda: connector.value("shinrai_connector_messages_total") >= 1, 30)
    finally:
        await connector.close()
    assert GOOD_TOKEN in introspection.tokens  # the server really checked our token
    ids = Counter(read_event_ids(env.kafka.bootstrap, env.topics.interactions))
    assert ids == Counter({email_event_id(mid): 1})


def test_a_refused_token_is_one_clear_error(
    oauth_dovecot: tuple[DovecotServer, Introspection], tmp_path: Path
) -> None:
    server, introspection = oauth_dovecot
    user, _ = server.add_user()
    introspection.user = user
    entry = mailbox_entry(server, user)
    del entry["password_env"]
    entry.update(auth="xoauth2", password_command=_token_command("expired-token"))
    with pytest.raises(ConnectorFailed) as caught:
        open_connection(MailboxSource.model_validate(entry))
    assert f"login refused for {user}" in str(caught.value)
    assert caught.value.hint == "check password_command (auth: xoauth2)"
    assert "expired-token" not in str(caught.value)
    assert introspection.tokens == ["expired-token"]
