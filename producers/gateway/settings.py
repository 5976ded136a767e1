"""Gateway settings live in the one settings object: ``shinrai.settings.GatewaySettings``.

Re-exported here for the gateway modules; environment variables are ``SHINRAI_GATEWAY__*``.
"""

from shinrai.settings import GatewaySettings

__all__ = ["GatewaySettings"]
