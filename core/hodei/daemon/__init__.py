"""The Hodei daemon (``hodei serve``): health monitoring and live configuration in one anyio task group."""

from hodei.daemon.service import Daemon, serve

__all__ = ["Daemon", "serve"]
