"""Alert-hook errors, all under the one Shinrai root (``shinrai.errors``).

They live here rather than in ``shinrai/errors.py`` so the alert package can grow them without
touching the shared tree; each subclasses the closest existing Shinrai error.
"""

from __future__ import annotations

from shinrai.errors import ConfigError, ShinraiError, SinkError


class SignatureInvalid(ShinraiError):
    """A webhook signature did not verify; ``reason`` says why (mismatch, stale, malformed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid Shinrai signature: {reason}")
        self.reason = reason


class RoutingConfigError(ConfigError):
    """The alert routing configuration is invalid or cannot be read."""


class DelivererStateError(SinkError):
    """The deliverer was used outside its lifecycle (add before setup, add after close)."""


class DeliveredStoreError(SinkError):
    """The delivered-keys store could not be opened, read or written."""
