"""``[metrics] listen`` addresses, parsed without importing the endpoint's dependencies."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})$")


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as ``(host, port)``; raises ValueError naming the problem."""
    match = _ADDRESS.match(listen)
    if not match:
        raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), got {listen!r}")
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"port must be at most 65535, got {port}")
    return match["v6"] or match["host"], port


def port_holder(host: str, port: int) -> str | None:
    """Who listens on ``host:port`` already, as ``NAME (pid N)``, when this user may see it.

    Best effort, for an error message: another user's process is not visible without privileges, and
    then (or on any failure) the answer is None. The command line is left out: it may hold a password.
    """
    import ipaddress

    import psutil

    try:
        wanted = ipaddress.ip_address(host)
    except ValueError:
        wanted = None  # a host name (localhost): any listener on the port may be the one
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status != psutil.CONN_LISTEN or not connection.laddr or connection.laddr.port != port:
                continue
            bound = ipaddress.ip_address(connection.laddr.ip.split("%", 1)[0])
            if isinstance(bound, ipaddress.IPv6Address) and bound.ipv4_mapped:  # gRPC listens on ::ffff:127.0.0.1
                bound = bound.ipv4_mapped
            if wanted is not None and not (wanted == bound or wanted.is_unspecified or bound.is_unspecified):
                continue
            if connection.pid is None:
                return None
            return f"{psutil.Process(connection.pid).name()} (pid {connection.pid})"
    except (psutil.Error, OSError, ValueError):
        return None
    return None


def cannot_listen(what: str, listen: str, reason: str) -> str:
    """The start-up error for an address that cannot be bound, naming the process that holds it if known."""
    host, port = parse_listen(listen)
    holder = port_holder(host, port) if port else None
    held = f"; it is held by {holder}" if holder else ""
    return f"{what} cannot listen on {listen}: {reason}{held}"
