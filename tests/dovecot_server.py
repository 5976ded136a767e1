"""A private Dovecot IMAP server for tests and benches: temporary config, users, Maildirs.

``DovecotServer(ca)`` writes a dovecot.conf in a fresh temporary folder (passwd-file users, Maildir
per user under ``folder/mail``, IMAPS on a free loopback port with a certificate of the test CA
of ``tests/tls_ca.py``, every process running as the current user) and runs ``dovecot -F`` as a
child process. Mail arrives by IMAP APPEND (``append``) or by local delivery, a file written
into the user's Maildir ``new/`` folder (``deliver``), which Dovecot notices like an MDA's.

Debian's ``dovecot-imapd`` provides the binary (``deploy/ci/install-dovecot.sh``).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.tls_ca import CertAuthority

DOVECOT_PATHS = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


def dovecot_binary() -> str | None:
    """Where the dovecot binary is, or None when it is not installed."""
    found = shutil.which("dovecot")
    if found:
        return found
    return next((p for p in DOVECOT_PATHS if os.access(p, os.X_OK)), None)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 0
first_valid_gid = 0
disable_plaintext_auth = no
auth_mechanisms = plain login{extra_mechanisms}
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
{oauth2}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  imap_idle_notify_interval = 1 secs
{capability}}}
"""


class DovecotServer:
    """One Dovecot process with its own config, users and mail (start, stop, restart)."""

    def __init__(
        self,
        ca: CertAuthority,
        *,
        port: int | None = None,
        idle: bool = True,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        """``idle=False``: the server does not announce IDLE (clients must poll).
        ``oauth2_introspection_url``: also accept XOAUTH2 logins, whose tokens Dovecot checks
        by POSTing them to that URL (RFC 7662 token introspection)."""
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError(
                "dovecot is not installed: run deploy/ci/install-dovecot.sh (Debian dovecot-imapd)"
            )
        self.binary = binary
        # Its own folder under the system temp dir, traversable by all: as root, Dovecot runs its
        # login and auth processes as its unprivileged users, which must reach the sockets and
        # the passwd file (a pytest tmp_path is private to its owner).
        root = Path(tempfile.mkdtemp(prefix="shinrai-dovecot-"))
        root.chmod(0o755)
        self.root = root
        self.ca = ca
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._users: dict[str, str] = {}
        for sub in ("run", "state", "mail", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "passwd").write_text("")
        uid, gid = os.getuid(), os.getgid()
        me, my_group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
        privileged = uid == 0  # Debian's package creates dovenull and dovecot
        login_user, internal_user, internal_group = (
            ("dovenull", "dovecot", "dovecot") if privileged else (me, me, my_group)
        )
        if privileged:  # Dovecot refuses uid 0 for mail: the mail belongs to `nobody` then
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            for sub in ("mail", "home"):
                os.chown(root / sub, uid, gid)
        self._mail_owner = (uid, gid)
        self.config = root / "dovecot.conf"
        self.config.write_text(
            _CONFIG.format(
                root=root,
                login_user=login_user,
                internal_user=internal_user,
                internal_group=internal_group,
                uid=uid,
                gid=gid,
                cert=ca.server_pem,
                key=ca.server_key,
                port=self.port,
                capability="" if idle else "  imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n",
                oauth2=self._oauth2(root, oauth2_introspection_url),
                extra_mechanisms=" xoauth2 oauthbearer" if oauth2_introspection_url else "",
            )
        )

    @staticmethod
    def _oauth2(root: Path, url: str | None) -> str:
        if url is None:
            return ""
        settings = root / "oauth2.conf.ext"
        settings.write_text(
            f"introspection_url = {url}\nintrospection_mode = post\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        settings.chmod(0o644)
        return (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {settings}\n}}\n"
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Run dovecot in the foreground as a child; return once it accepts connections."""
        log = (self.root / "stdout.log").open("ab")
        self._proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `stop` ends the imap children too
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dovecot exited {self._proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log_tail()}")

    def stop(self) -> None:
        """Stop dovecot (SIGTERM, then SIGKILL) and wait for its port to close."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The master alone leaves running imap processes serving their clients; a server that
        # goes down (restart, crash) drops every connection: signal the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # any child still alive

    def close(self) -> None:
        """Stop dovecot and remove its folder (config, users, mail)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self, pause_s: float = 0.0) -> None:
        """Stop, wait ``pause_s`` (clients see a dead server), start again on the same port."""
        self.stop()
        time.sleep(pause_s)
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The end of dovecot's logs (for failure messages)."""
        text = ""
        for name in ("dovecot.log", "stdout.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- users and mail ---------------------------------------------------------------------------

    def add_user(self, name: str | None = None, password: str | None = None) -> tuple[str, str]:
        """Create a user (passwd-file is re-read on every login); returns (name, password)."""
        name = name or f"u{uuid.uuid4().hex[:8]}"
        password = password or uuid.uuid4().hex
        self._users[name] = password
        with (self.root / "passwd").open("a") as f:
            f.write(f"{name}:{{PLAIN}}{password}::::::\n")
        return name, password

    def client(self, user: str) -> object:
        """A logged-in imapclient connection for ``user`` (trusting the test CA)."""
        import ssl

        from imapclient import IMAPClient

        context = ssl.create_default_context(cafile=str(self.ca.ca_pem))
        imap = IMAPClient(self.host, port=self.port, ssl=True, ssl_context=context, timeout=30)
        imap.login(user, self._users[user])
        return imap

    def append(self, user: str, folder: str, messages: list[bytes]) -> None:
        """IMAP APPEND each message to ``folder`` (created when missing)."""
        imap = self.client(user)
        try:
            if not imap.folder_exists(folder):  # type: ignore[attr-defined]
                imap.create_folder(folder)  # type: ignore[attr-defined]
            for raw in messages:
                imap.append(folder, raw)  # type: ignore[attr-defined]
        finally:
            imap.logout()  # type: ignore[attr-defined]

    def recreate_folder(self, user: str, folder: str) -> None:
        """Delete and create ``folder`` again: it gets a new UIDVALIDITY and restarts UIDs at 1."""
        imap = self.client(user)
        try:
            imap.delete_folder(folder)  # type: ignore[attr-defined]
            imap.create_folder(folder)  # type: ignore[attr-defined]
        finally:
            imap.logout()  # type: ignore[attr-defined]

    def deliver(self, user: str, raw: bytes) -> Path:
        """Local delivery into the user's INBOX: write tmp/, then rename into new/ (Maildir)."""
        box = self.root / "mail" / user
        for path in (box, box / "tmp", box / "new", box / "cur"):
            if not path.exists():
                path.mkdir()
                os.chown(path, *self._mail_owner)
        name = f"{time.time_ns()}.{uuid.uuid4().hex[:8]}.{socket.gethostname()}"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, *self._mail_owner)
        target = box / "new" / name
        tmp.rename(target)
        return target
