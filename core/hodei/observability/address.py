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
