"""The status page's server: one part of the daemon's task group, on ``[ui] listen``.

Hypercorn serves the application as a task on the daemon's own event loop (it installs no signal
handlers when given a shutdown trigger, so SIGTERM and SIGHUP stay the daemon's). The socket is bound
here first, so the address actually bound (port 0 picks one) is known and logged, and an address that
cannot be bound is reported once, naming its holder. A status page that cannot listen does not stop the
daemon: selection, provisioning and the API go on, and the error says why there is no page.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus
from hypercorn.asyncio import serve
from hypercorn.config import Config

from hodei.errors import InvalidInput, Problem
from hodei.observability.address import cannot_listen, parse_listen
from hodei.ui.app import StatusPage

log = logging.getLogger("hodei.ui")

# Connections waiting to be accepted, how long an idle one is kept, and how long a request may take to
# arrive (a client that sends a byte a minute is let go): a page is small and quick.
BACKLOG = 64
KEEP_ALIVE_SECONDS = 5
READ_SECONDS = 10


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class UiServer:
    """Serves ``page`` on ``listen`` (``HOST:PORT``; empty: no status page).

    :param token: reads the token every page asks for (the API's), at start; None: pages are open.
    :param certificate: ``(certfile, keyfile)``: serve HTTPS with them (the API's), else plain HTTP.
    :param grace_seconds: how long open requests may take to finish when the daemon stops.
    """

    name = "status page"

    def __init__(self, page: StatusPage, listen: str, *, token: Callable[[], str | None] = lambda: None,
                 certificate: tuple[str, str] | None = None, grace_seconds: float = 5.0):
        self.page = page
        self.listen = listen
        self.token = token
        self.certificate = certificate
        self.grace_seconds = grace_seconds
        self.address: tuple[str, int] | None = None
        self.stopping = False
        self._stop = anyio.Event()

    @property
    def url(self) -> str | None:
        if self.address is None:
            return None
        host, port = self.address
        return f"{'https' if self.certificate else 'http'}://{f'[{host}]' if ':' in host else host}:{port}/"

    def stop(self) -> None:
        self.stopping = True
        self._stop.set()

    def _config(self, fd: int) -> Config:
        config = Config()
        config.bind = [f"fd://{fd}"]
        config.backlog = BACKLOG
        config.keep_alive_timeout = KEEP_ALIVE_SECONDS
        config.read_timeout = READ_SECONDS
        config.h11_max_incomplete_size = 16 * 1024  # a request line and headers: 16 KiB
        config.graceful_timeout = self.grace_seconds
        config.accesslog = None
        # Hypercorn's own lines ("Running on ...") would repeat what this part logs; its errors are kept.
        quiet = logging.getLogger("hodei.ui.hypercorn")
        quiet.setLevel(logging.WARNING)
        config.errorlog = quiet
        config.include_server_header = False
        if self.certificate is not None:
            config.certfile, config.keyfile = self.certificate
            config.create_ssl_context()  # read now: a certificate that cannot be used fails the start
        return config

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if not self.listen:
            log.info("status page off ([ui] listen is empty)")
            task_status.started()
            return
        self.page.protect(self.token(), secure=self.certificate is not None)
        host, port = parse_listen(self.listen)
        try:
            sock = _bind(host, port)
        except OSError as exc:
            log.error("no status page: %s", cannot_listen("status page ([ui] listen)", self.listen,
                                                         str(exc.strerror or exc)))
            task_status.started()
            return
        bound = sock.getsockname()
        self.address = (str(bound[0]), int(bound[1]))
        try:
            config = self._config(sock.fileno())
        except (OSError, ValueError) as exc:  # a certificate that cannot be read
            sock.close()
            raise InvalidInput(Problem("api.tls_cert_file", f"the status page cannot use it: {exc}")) from None
        sock.detach()  # the server's socket (made from the descriptor) owns and closes it from here
        log.info("status page listening on %s (%s)", self.url,
                 "token required" if self.page.token is not None else "no token: loopback only")
        task_status.started()
        try:
            await serve(self.page.app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
        finally:
            self.address = None
