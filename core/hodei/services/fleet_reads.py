"""What a running daemon's live view (its fleet) reads of the database, and nothing else.

The daemon follows ``provider_configs`` row by row (the change feed: LISTEN/NOTIFY on PostgreSQL, a change
counter on SQLite) and validates only the rows that changed, so it reads rows raw, fingerprints them, and has
the changed ones validated through their plugin here: the same store and state tables every other entry
point goes through. It writes nothing. Sync: the daemon runs every read in its database threads (validation
in a worker thread of its own).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence

from hodei.domain import ProviderState
from hodei.models import ProviderConfigRow
from hodei.provider_spec import PROVIDER_FIELDS
from hodei.storage.health_results import read_states
from hodei.storage.provider_state import ProviderStates
from hodei.storage.rows import row_key
from hodei.storage.slots import Slots, with_slots
from hodei.store import Store, StoredProvider

# A row as stored, not yet validated (what :meth:`FleetReads.rows` returns), and a row validated.
RawRow = ProviderConfigRow
__all__ = ["FleetReads", "RawRow", "Slots", "StoredProvider", "with_slots"]


class FleetReads:
    """The reads of the daemon's live view, on ``store``'s database and ``states``' tables."""

    def __init__(self, store: Store, states: ProviderStates):
        self.store, self.states = store, states

    # -- where the change feed comes from -----------------------------------------------------

    @property
    def postgres(self) -> bool:
        """Changes are notified (PostgreSQL); otherwise (SQLite) :meth:`config_version` is polled."""
        return self.store.engine.dialect.name == "postgresql"

    def listen_url(self) -> str:
        """The database's address for a connection of the daemon's own that LISTENs (libpq form, with its
        password: it never leaves the daemon's memory)."""
        url = self.store.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def config_version(self) -> int:
        """SQLite: the change counter the triggers on provider_configs keep (any write, SQL edits included)."""
        with self.store.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT version FROM provider_configs_version WHERE id = 1").scalar_one()

    # -- rows ---------------------------------------------------------------------------------

    def rows(self, ids: Sequence[uuid.UUID] | None = None) -> list[RawRow]:
        """Rows as stored, not yet validated: all of them, or those of ``ids`` (a deleted one is missing)."""
        return self.store.raw_rows() if ids is None else self.store.raw_rows(ids)

    @staticmethod
    def key(row: RawRow) -> uuid.UUID:
        """The id a row is known by in memory (also for an id edited in SQL into something not a UUID)."""
        return row_key(row.id)

    @staticmethod
    def fingerprint(row: RawRow) -> str:
        """A digest of what the row holds: the same digest, the same provider (no need to validate it again)."""
        values = {name: getattr(row, name) for name in PROVIDER_FIELDS}
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()

    def validate(self, row: RawRow) -> StoredProvider:
        """The row validated through its plugin now (an invalid one comes back with its problems)."""
        return self.store.read_row(row)

    # -- state --------------------------------------------------------------------------------

    def states_of(self, ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, ProviderState]:
        """The recorded state of every provider, or of those of ``ids`` (those never checked are left out)."""
        return self.states.all() if ids is None else read_states(self.store.engine, ids)

    def slot_counts(self) -> dict[uuid.UUID, Slots]:
        """Per provider, the workers holding a slot: (reserved, active)."""
        return self.states.slot_counts()
