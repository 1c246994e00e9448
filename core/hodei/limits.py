"""The limits of what Hodei accepts: part of its interface, listed with their reasons in docs/limits.md.

Each is checked where the input comes in, refused naming the field, and every check is linear in
the size of what it checks.
"""

from __future__ import annotations

from typing import Final

NAME_CHARS: Final = 200
"""A provider's name."""
TEXT_CHARS: Final = 200
"""A provider type, a region name, a label or annotation key."""
LABEL_VALUE_CHARS: Final = 1024
"""A required label's value."""
ANNOTATION_VALUE_CHARS: Final = 4096
"""An annotation's value (free text for people)."""
LABELS: Final = 256
"""Required labels of one provider; annotations of one provider likewise."""
REGIONS: Final = 1000
"""Allowed regions of one provider."""
CONFIG_BYTES: Final = 64 * 1024
"""A provider's ``config``, as compact JSON in UTF-8."""
NESTING: Final = 32
"""Levels of objects and lists in a document (a provider, a requirements document, a file)."""
DOCUMENT_BYTES: Final = 16 * 1024 * 1024
"""A file (or standard input) given to ``apply``, ``select``, ``--config-file`` and the like."""
HEALTH_REASON_CHARS: Final = 4096
"""What a health check's reason keeps; a longer one is cut, saying so."""
YAML_VALUES: Final = 100_000
"""The values a YAML document may expand to through its aliases, or its length in characters if larger:
an alias repeats a value, it never multiplies the document."""
API_CONNECTIONS: Final = 1000
"""Open connections the API accepts at once; fewer when the file limit leaves less (:data:`RESERVED_FILES`)."""
RESERVED_FILES: Final = 64
"""File descriptors kept for everything but API connections: the database (SQLite's file, WAL and
shared memory, PostgreSQL's sockets), the metrics endpoint, logs, plugins' own sockets."""
API_STREAMS: Final = 100
"""Calls in flight on one API connection."""
API_PENDING_CALLS: Final = 100_000
"""Calls gRPC holds for the API before its handlers take them: as many as its connections can carry
(:data:`API_CONNECTIONS` x :data:`API_STREAMS`)."""
HANDSHAKE_SECONDS: Final = 10
"""A connection that has not completed its HTTP/2 (and TLS) handshake by then is closed."""
IDLE_CONNECTION_SECONDS: Final = 300
"""A connection with no call in flight for this long is closed (the client reconnects when it needs to)."""
LISTED: Final = 1000
"""The most one answer lists: a page of providers, workers (``workers list --limit``), history entries."""
