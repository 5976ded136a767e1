"""A small KRaft cluster from the local broker's jars, for fault tests: N brokers, one killable.

``KraftCluster(root, nodes=3)`` writes one config per node and formats each log directory with
one cluster id; ``start()`` launches every node (``java -cp 'libs/*' kafka.Kafka``, the jars
``shinrai kafka start`` provisioned) and waits until all of them are in the metadata. Nodes are
combined broker + controller (the three voters of the quorum) or, with ``separate_controller``,
brokers beside one dedicated controller. Durability as in production: every topic replicated on
``min(nodes, 3)`` brokers, ``min.insync.replicas`` 2 (1 on a single node), no unclean leader
election. ``kill(i)`` is ``kill -9`` of node ``i``'s JVM, ``restart(i)`` starts it again on
its data. Ports are free ephemeral ones (CI runs many of these one after another).
"""

from __future__ import annotations

import base64
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shinrai.local_kafka import LocalKafka, shipped_text
from shinrai.settings import LocalKafkaSettings


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _accepts(port: int | None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port or 0), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Node:
    """One JVM of the cluster."""

    node_id: int
    roles: str  # "broker,controller", "broker" or "controller"
    port: int | None  # PLAINTEXT (None for a pure controller)
    controller_port: int | None
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.dir / "server.properties"


class KraftCluster:
    """N KRaft brokers on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self, root: Path, *, nodes: int = 3, separate_controller: bool = False, heap: str = "320m"
    ) -> None:
        self.root = root
        self.heap = heap
        self.replication = min(nodes, 3)
        self.min_insync = min(2, nodes)
        local = LocalKafka(LocalKafkaSettings())
        self._java = local._java()  # the JDK `shinrai kafka start` uses
        self._libs = local.provision()
        ports = free_ports(2 * nodes + 1)
        self.nodes: list[Node] = []
        for i in range(nodes):
            roles = "broker" if separate_controller else "broker,controller"
            cport = None if separate_controller else ports[nodes + i]
            self.nodes.append(Node(i + 1, roles, ports[i], cport, root / f"node{i + 1}"))
        if separate_controller:
            self.nodes.append(Node(100, "controller", None, ports[-1], root / "controller"))

    @property
    def bootstrap(self) -> str:
        """Every broker's address (clients find the live ones)."""
        return ",".join(f"127.0.0.1:{n.port}" for n in self.brokers)

    @property
    def live_bootstrap(self) -> str:
        """The addresses of the brokers running now (kafka-python gives up on a dead first one)."""
        return ",".join(
            f"127.0.0.1:{n.port}"
            for n in self.brokers
            if n.proc is not None and n.proc.poll() is None
        )

    @property
    def brokers(self) -> list[Node]:
        return [n for n in self.nodes if n.port is not None]

    def _voters(self) -> str:
        return ",".join(
            f"{n.node_id}@127.0.0.1:{n.controller_port}"
            for n in self.nodes
            if n.controller_port is not None
        )

    def _write_config(self, node: Node) -> None:
        listeners, advertised = [], []
        if node.port is not None:
            listeners.append(f"PLAINTEXT://127.0.0.1:{node.port}")
            advertised.append(f"PLAINTEXT://127.0.0.1:{node.port}")
        if node.controller_port is not None:
            listeners.append(f"CONTROLLER://127.0.0.1:{node.controller_port}")
        r, isr = self.replication, self.min_insync
        lines = [
            f"process.roles={node.roles}",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={self._voters()}",
            f"listeners={','.join(listeners)}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={node.dir / 'data'}",
            "auto.create.topics.enable=false",
            f"default.replication.factor={r}",
            f"min.insync.replicas={isr}",
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={r}",
            "offsets.topic.num.partitions=6",
            f"transaction.state.log.replication.factor={r}",
            f"transaction.state.log.min.isr={isr}",
            f"share.coordinator.state.topic.replication.factor={r}",
            f"share.coordinator.state.topic.min.isr={isr}",
            "group.initial.rebalance.delay.ms=0",
            "log.segment.bytes=67108864",
            # A killed broker is fenced (its partitions and group coordinators move) within
            # seconds, not the default 9 s: the test's clients stop asking the dead node sooner.
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=500",
        ]
        if advertised:
            lines += [f"advertised.listeners={','.join(advertised)}",
                      "inter.broker.listener.name=PLAINTEXT"]  # fmt: skip
        node.dir.mkdir(parents=True, exist_ok=True)
        node.config.write_text("\n".join(lines) + "\n")
        (node.dir / "log4j2.yaml").write_text(shipped_text("log4j2.yaml"), encoding="utf-8")

    def _jvm(self, node: Node, *args: str) -> list[str]:
        return [self._java, f"-Dlog4j2.configurationFile={node.dir / 'log4j2.yaml'}",
                "-cp", str(self._libs / "*"), *args]  # fmt: skip

    def format(self) -> None:
        """Write every node's config and format its storage with one cluster id."""
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        for node in self.nodes:
            self._write_config(node)
            cmd = self._jvm(
                node, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(node.config)
            )
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"formatting node {node.node_id}: {done.stdout}{done.stderr}")

    def _launch(self, node: Node) -> None:
        node.log = (node.dir / "kafka.log").open("ab")
        java, *args = self._jvm(node, "kafka.Kafka", str(node.config))
        # C1 only: a broker that lives a minute starts faster without the optimising compiler.
        opts = [f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1"]
        node.proc = subprocess.Popen(
            [java, *opts, *args],
            stdout=node.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=node.dir,
        )

    def start(self, timeout_s: float = 90.0) -> float:
        """Format, launch every node, wait until every broker is in the metadata; seconds."""
        began = time.monotonic()
        self.format()
        for node in self.nodes:
            self._launch(node)
        self.wait_brokers(len(self.brokers), timeout_s)
        return time.monotonic() - began

    def wait_brokers(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until the metadata lists exactly ``count`` live (unfenced) brokers."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    raise RuntimeError(f"node {node.node_id} exited:\n{self.log_tail(node)}")
            # kafka-python leaks a socket on every refused connection: ask it nothing until
            # every running broker accepts one.
            if not all(_accepts(n.port) for n in self.brokers if n.proc is not None):
                time.sleep(0.3)
                continue
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.live_bootstrap, request_timeout_ms=5000
                )
                try:
                    brokers = admin.describe_cluster()["brokers"]
                    if sum(not b.get("is_fenced", False) for b in brokers) == count:
                        return
                finally:
                    admin.close()
            except (KafkaError, OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"{count} brokers not up within {timeout_s:g} s ({last})")

    def kill(self, node_id: int) -> None:
        """``kill -9`` the node's JVM (only our own child, by its handle)."""
        node = self._node(node_id)
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait(timeout=30)
        node.proc = None
        if node.log is not None:
            node.log.close()
            node.log = None

    def restart(self, node_id: int, timeout_s: float = 60.0) -> None:
        """Start a killed node again on its data; wait until its listener accepts."""
        node = self._node(node_id)
        self._launch(node)
        port = node.port or node.controller_port
        deadline = time.monotonic() + timeout_s
        while True:
            assert node.proc is not None
            if node.proc.poll() is not None:
                raise RuntimeError(f"node {node_id} exited:\n{self.log_tail(node)}")
            try:
                with socket.create_connection(("127.0.0.1", port or 0), timeout=1):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"node {node_id} not listening within {timeout_s:g} s"
                    ) from exc
                time.sleep(0.3)

    def stop(self) -> None:
        """Kill every node still running (the data goes with the test's tmp directory)."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(timeout=30)
            node.proc = None
            if node.log is not None:
                node.log.close()
                node.log = None

    def _node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def log_tail(self, node: Node, chars: int = 3000) -> str:
        path = node.dir / "kafka.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""
