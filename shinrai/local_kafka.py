"""The project's own single-node Apache Kafka broker (KRaft, combined controller + broker).

Provision on first use (resolve the pinned release from Maven Central with ``mvn
dependency:copy-dependencies`` into a cache), format the storage once
(``kafka.tools.StorageTool format --standalone``), start ``java -cp 'libs/*' kafka.Kafka``, wait
until the broker answers a metadata request, stop by pid. Idempotent: start twice = one broker.

The pinned pom and the config templates ship inside the package (``shinrai/kafka_broker/``,
read with ``importlib.resources``); everything written lives under ``Settings.local_kafka.data_dir``
(default ``~/.cache/shinrai/kafka``, see shinrai/settings.py), so an installed wheel runs the
broker as a source checkout does:
    cache/kafka-<v>/pom.xml     a copy of the shipped pom (maven's project file)
    cache/kafka-<v>/libs/       resolved jars
    run/<port>/                 data/, server.properties, log4j2.yaml, kafka.log, kafka.pid
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from shinrai.errors import LocalKafkaError
from shinrai.settings import LocalKafkaSettings

_VERSION_RE = re.compile(r"<kafka\.version>([^<]+)</kafka\.version>")
# pom.xml (the pinned release), server.properties.in (template), log4j2.yaml: package data.
SHIPPED: Traversable = files("shinrai") / "kafka_broker"


def shipped_text(name: str) -> str:
    """The text of one file shipped in ``shinrai/kafka_broker/``."""
    return (SHIPPED / name).read_text(encoding="utf-8")


def pinned_version() -> str:
    """The Kafka version pinned in the shipped pom.xml (property ``kafka.version``)."""
    match = _VERSION_RE.search(shipped_text("pom.xml"))
    if not match:
        raise LocalKafkaError("shinrai/kafka_broker/pom.xml: no <kafka.version> property")
    return match.group(1)


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What ``status`` reports."""

    version: str
    address: str
    pid: int | None
    running: bool  # our process is alive
    answering: bool  # the address answers a metadata request
    log_file: Path


@dataclass(frozen=True, slots=True)
class Listener:
    """An extra listener beside the PLAINTEXT one (the security tests add SASL and TLS ones).

    ``properties`` are listener-scoped broker settings written as
    ``listener.name.<name>.<key>=<value>`` (e.g. ``plain.sasl.jaas.config``,
    ``ssl.keystore.location``).
    """

    name: str
    protocol: str  # SASL_PLAINTEXT, SSL or SASL_SSL
    port: int
    properties: Mapping[str, str] = field(default_factory=dict)


class LocalKafka:
    """Provision, format, start, health-check and stop the local broker. No I/O in __init__.

    The PLAINTEXT listener on ``settings.port`` is always there (health checks and the broker's
    own traffic use it); ``listeners`` adds more, ``run_dir`` moves data, config and log.
    """

    def __init__(
        self,
        settings: LocalKafkaSettings,
        *,
        listeners: Sequence[Listener] = (),
        run_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.listeners = tuple(listeners)
        self.root = settings.data_dir
        self.run_dir = run_dir or self.root / "run" / str(settings.port)
        self._process: subprocess.Popen[bytes] | None = None  # the broker this object started
        self.data_dir = self.run_dir / "data"
        self.pid_file = self.run_dir / "kafka.pid"
        self.log_file = self.run_dir / "kafka.log"
        self.address = f"127.0.0.1:{settings.port}"

    # -- provisioning -------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The Kafka version pinned in the shipped pom.xml."""
        return pinned_version()

    @property
    def libs_dir(self) -> Path:
        return self.root / "cache" / f"kafka-{self.version}" / "libs"

    def _java(self) -> str:
        if self.settings.java_home is not None:
            return str(self.settings.java_home / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError(
                "no `java` on PATH (Kafka needs Java 17+); set SHINRAI_LOCAL_KAFKA__JAVA_HOME"
            )
        return java

    def provision(self) -> Path:
        """Resolve the pinned Kafka release and its runtime dependencies once; return the libs dir."""
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalKafkaError(
                "no `mvn` on PATH: Maven resolves the Kafka jars from Maven Central"
            )
        staging = self.libs_dir.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        # Maven needs the pom as a file; the shipped one may sit in a zip or a read-only tree.
        pom = self.libs_dir.with_name("pom.xml")
        pom.parent.mkdir(parents=True, exist_ok=True)
        pom.write_text(shipped_text("pom.xml"), encoding="utf-8")
        cmd = [
            mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise LocalKafkaError(f"mvn could not resolve Kafka {self.version}:\n{tail}")
        # Atomic swap so an interrupted download never looks complete.
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.rename(self.libs_dir)
        marker.write_text(self.version)
        return self.libs_dir

    def _classpath(self) -> str:
        return str(self.libs_dir / "*")

    def _render_config(self) -> Path:
        template = shipped_text("server.properties.in")
        config = template.format(
            port=self.settings.port,
            controller_port=self.settings.controller_port,
            data_dir=self.data_dir,
        )
        if self.listeners:
            config = self._add_listeners(config)
        path = self.run_dir / "server.properties"
        path.write_text(config)
        # The JVM reads its log config from a file: a copy beside the rendered server config.
        (self.run_dir / "log4j2.yaml").write_text(shipped_text("log4j2.yaml"), encoding="utf-8")
        return path

    def _add_listeners(self, config: str) -> str:
        """Append the extra listeners to the three listener lines, then their own settings."""
        extra = {
            "listeners": [f"{x.name}://127.0.0.1:{x.port}" for x in self.listeners],
            "advertised.listeners": [f"{x.name}://127.0.0.1:{x.port}" for x in self.listeners],
            "listener.security.protocol.map": [f"{x.name}:{x.protocol}" for x in self.listeners],
        }
        lines = []
        for line in config.splitlines():
            key = line.partition("=")[0]
            if key in extra:
                line = ",".join([line, *extra[key]])
            lines.append(line)
        for x in self.listeners:
            prefix = f"listener.name.{x.name.lower()}."
            lines.extend(f"{prefix}{key}={value}" for key, value in x.properties.items())
        return "\n".join(lines) + "\n"

    def format(self) -> bool:
        """Format the KRaft storage if it is not formatted yet; True when it formatted now."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self._render_config()
        if (self.data_dir / "meta.properties").exists():
            return False
        # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [
            self._java(), *self._log_opts(), "-cp", self._classpath(), "kafka.tools.StorageTool",
            "format", "--standalone", "-t", cluster_id, "-c", str(config),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LocalKafkaError(f"formatting {self.data_dir} failed:\n{proc.stdout}{proc.stderr}")
        return True

    def _log_opts(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={self.run_dir / 'log4j2.yaml'}"]

    # -- lifecycle ----------------------------------------------------------------------------

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def _is_our_broker(pid: int) -> bool:
        """The pid is alive AND is a kafka.Kafka JVM (a recycled pid is not our broker)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"kafka.Kafka" in cmdline

    def answering(self, timeout_s: float = 3.0) -> bool:
        """True when the address answers a Kafka metadata request."""
        try:
            with socket.create_connection(("127.0.0.1", self.settings.port), timeout=timeout_s):
                pass
        except OSError:
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.address,
                request_timeout_ms=int(timeout_s * 1000),
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            cluster = admin.describe_cluster()
            return bool(cluster.get("brokers"))
        except (KafkaError, OSError, ValueError):
            return False
        finally:
            admin.close()

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        running = pid is not None and self._is_our_broker(pid)
        return BrokerStatus(
            version=self.version,
            address=self.address,
            pid=pid if running else None,
            running=running,
            answering=self.answering(timeout_s=2.0),
            log_file=self.log_file,
        )

    def start(self) -> BrokerStatus:
        """Provision, format and start the broker, then wait until it answers. Idempotent."""
        pid = self._read_pid()
        if pid is not None and self._is_our_broker(pid):
            self._wait_answering(pid)
            return self.status()
        self.require_free_ports()
        self.provision()
        self.format()
        cmd = [
            self._java(), f"-Xmx{self.settings.heap}", f"-Xms{self.settings.heap}",
            "-XX:+UseG1GC", "-Djava.awt.headless=true", *self._log_opts(),
            "-cp", self._classpath(), "kafka.Kafka", str(self.run_dir / "server.properties"),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.run_dir,
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        self._process = proc
        self._wait_answering(proc.pid, proc)
        return self.status()

    def require_free_ports(self) -> None:
        """Raise ``PortInUse`` (one line: the port and its setting) when a port the broker must
        listen on is taken: found here in milliseconds, not by the JVM after seconds of start-up
        with a stack trace (or, for a listener that is not Kafka, after a minute of waiting)."""
        from shinrai.ports import PortInUse, require_free

        wanted = [
            (self.settings.port, "SHINRAI_LOCAL_KAFKA__PORT (or --port)", "the local Kafka broker"),
            (
                self.settings.controller_port,
                "SHINRAI_LOCAL_KAFKA__CONTROLLER_PORT (or --port, which takes the next one)",
                "the local Kafka controller",
            ),
            *(
                (x.port, f"the {x.name} listener's port", "the local Kafka broker")
                for x in self.listeners
            ),
        ]
        try:
            for port, setting, what in wanted:
                require_free(port, setting=setting, what=what, host="127.0.0.1")
        except PortInUse as exc:
            raise LocalKafkaError(str(exc)) from None

    def running(self) -> bool:
        """True when the broker of this run directory (its pid file) is alive."""
        pid = self._read_pid()
        return pid is not None and self._is_our_broker(pid)

    def _wait_answering(self, pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            # For a process we spawned, poll() is the truth: the JVM launcher may briefly re-exec
            # itself, during which /proc/<pid>/cmdline does not name kafka.Kafka yet.
            alive = proc.poll() is None if proc is not None else self._is_our_broker(pid)
            if not alive:
                raise LocalKafkaError(
                    f"the broker (pid {pid}) exited during start-up; last log lines:\n{self.log_tail()}"
                )
            if self.answering(timeout_s=2.0):
                return
            time.sleep(0.5)
        raise LocalKafkaError(
            f"the broker (pid {pid}) did not answer at {self.address} within "
            f"{self.settings.start_timeout_s:.0f}s; last log lines:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker by pid (SIGTERM, then SIGKILL after ``timeout_s``); True if one ran."""
        pid = self._read_pid()
        if pid is None or not self._is_our_broker(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._is_our_broker(pid):
            time.sleep(0.2)
        if self._is_our_broker(pid):
            os.kill(pid, signal.SIGKILL)
            while self._is_our_broker(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        if self._process is not None and self._process.pid == pid:
            self._process.wait()  # our own child: reap it
            self._process = None
        return True

    def reset(self) -> None:
        """Stop and delete the broker's data (topics, offsets). The jar cache stays."""
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"
