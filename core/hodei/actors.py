"""Who or what made a change, as a provider's history records it (its ``actor``).

One line of text, never a secret: an API token is known by a short hash of it, never by itself.

* ``cli USER@HOST``: the ``hodei`` command on the database directly;
* ``api PEER (token sha256:0123456789ab)``: a call to the daemon's API, from PEER (gRPC's
  ``ipv4:10.0.0.5:53412``), with the mutual-TLS client's common name when there is one;
* ``health monitor on HOST (pid PID)``: a daemon's own checks (``hodei daemons`` lists HOST and PID);
* ``sql (user U, application A, from ADDRESS, seen by the daemon on HOST (pid PID))``: a change made in
  SQL, outside Hodei, that a daemon saw; on PostgreSQL with the session that wrote the row, as the row's
  notification told (a full re-read, and SQLite, know nothing of it: ``sql (seen by ...)``);
* ``unknown``: a change recorded before Hodei recorded actors.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket

from hodei.redaction import shorten

UNKNOWN = "unknown"
# An actor is shown in a table cell: bounded, one line.
ACTOR_CHARS = 300


def _one_line(text: str) -> str:
    return shorten(" ".join("".join(c if c.isprintable() else " " for c in text).split()), ACTOR_CHARS)


def user_at_host() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    return _one_line(f"{user}@{socket.gethostname()}")


def cli() -> str:
    return f"cli {user_at_host()}"


def token_identity(token: str) -> str:
    """A stable name for an API token that does not reveal it: the first 12 hex digits of its SHA-256."""
    return "token sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def api(peer: str, token: str | None, client: str | None = None) -> str:
    """A call to the API from ``peer``; ``token``: its identity (:func:`token_identity`), None without one;
    ``client``: the common name of a mutual-TLS client certificate."""
    who = [f"client {client}"] if client else []
    who.append(token if token else "no token")
    return _one_line(f"api {peer or 'unknown peer'} ({', '.join(who)})")


def _daemon() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


def health_monitor() -> str:
    """This daemon's health monitor."""
    return _one_line(f"health monitor on {_daemon()}")


def sql(known: str = "") -> str:
    """An edit made in SQL that this daemon saw; ``known``: what the database told of who made it."""
    return _one_line(f"sql ({known + ', ' if known else ''}seen by the daemon on {_daemon()})")
