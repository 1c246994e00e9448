"""systemd's notify protocol: READY=1, STATUS=..., RELOADING=1, STOPPING=1, WATCHDOG=1 to $NOTIFY_SOCKET.

The protocol is one datagram of ``KEY=VALUE`` lines to a Unix socket (a leading ``@`` names an
abstract socket); a dozen lines, so no library (the Python bindings need libsystemd to build).
Without ``NOTIFY_SOCKET`` every call does nothing, so the daemon runs the same outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.address = ("\0" + address[1:]) if address and address.startswith("@") else address
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str | int) -> bool:
        """Send ``READY=1`` as ``send(READY=1)``; ``False`` when there is no socket or it failed."""
        if not self.address:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message, self.address)
            return True
        except OSError as exc:
            # systemd gone or the socket not ours: the daemon's work matters more than telling it.
            log.debug("notify %s failed: %s", message, exc)
            return False

    def reloading(self, status: str) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (CLOCK_MONOTONIC, µs), which ``Type=notify-reload`` needs to
        tell this reload from an earlier one; READY=1 follows when the reload is done."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
                         STATUS=status)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of ``$WATCHDOG_USEC``), when this process is the one watched."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None
