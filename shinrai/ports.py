"""Is a TCP port free to listen on? Asked before anything starts, so a taken port is one line.

A server that finds its port taken fails late and obscurely: the local broker's JVM after its
start-up (a Java stack trace), the worker's ``/metrics`` after topics, ClickHouse and Faust are
up. :func:`require_free` binds the port the way those servers will (``SO_REUSEADDR``, so a port
left in TIME_WAIT by a server that just stopped still counts as free) and releases it at once;
a port that cannot be bound raises :class:`PortInUse` naming the port and the setting to change.
There is a window between the check and the real bind; the servers' own errors still cover it.
"""

from __future__ import annotations

import errno
import socket

from shinrai.errors import ShinraiError


class PortInUse(ShinraiError):
    """A port a server of ours must listen on is taken (or may not be bound)."""


def bind_error(port: int, host: str = "0.0.0.0") -> OSError | None:
    """The error binding ``host:port`` meets now, or None when the port is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # "::" binds IPv6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def require_free(port: int, *, setting: str, what: str, host: str = "0.0.0.0") -> None:
    """Raise :class:`PortInUse` when ``host:port`` cannot be bound; 0 (any port) always passes.

    ``setting`` names what chooses the port (``SHINRAI_WORKER__METRICS_PORT``, ``--port``);
    ``what`` says which server wanted it (``the worker's /metrics``).
    """
    if port == 0:
        return
    error = bind_error(port, host)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        reason = "is already in use by another program"
    else:
        reason = f"cannot be bound ({error.strerror or error})"
    raise PortInUse(
        f"port {port} ({host}) for {what} {reason}: stop that program or set {setting} to "
        "another port"
    )
